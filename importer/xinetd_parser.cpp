// xinetd.conf(5) syntax; see xinetd_parser.h.
#include "importer/xinetd_parser.h"

#include <algorithm>

namespace usherd::importer {
namespace {

// Nested include/includedir levels; xinetd has no limit, but a cycle must end somewhere.
constexpr int kMaxIncludeDepth = 16;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

std::vector<std::string> split_blanks(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i])) ++i;
    std::size_t start = i;
    while (i < text.size() && !is_blank(text[i])) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

// xinetd's line_has_only_1_char().
bool is_only(std::string_view line, char c) {
  bool seen = false;
  for (char x : line) {
    if (x == c && !seen) {
      seen = true;
    } else if (!is_blank(x)) {
      return false;
    }
  }
  return seen;
}

struct Line {
  std::string_view text;
  unsigned number = 0;
};

// The lines of a file that are neither blank nor comments (xinetd's next_line()).
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}

  bool next(Line& out) {
    while (pos_ <= text_.size()) {
      if (pos_ == text_.size()) {
        pos_ = text_.size() + 1;
        return false;
      }
      std::size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      std::string_view line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++number_;
      std::size_t first = 0;
      while (first < line.size() && is_blank(line[first])) ++first;
      if (first == line.size() || line[first] == '#') continue;
      out = {line, number_};
      return true;
    }
    return false;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  unsigned number_ = 0;
};

// xinetd opens a relative include path from its working directory, which is "/" for a
// daemon; an import reads configurations copied anywhere, so a relative path is taken from
// the directory of the file that names it.
std::string relative_to(const std::string& path, const std::string& from) {
  if (path.empty() || path.front() == '/') return path;
  std::size_t slash = from.rfind('/');
  return slash == std::string::npos ? path : from.substr(0, slash + 1) + path;
}

class Parser {
 public:
  Parser(const System& system, XinetdConfig& config, std::vector<std::string>& stack)
      : system_(system), config_(config), stack_(stack) {}

  void parse(std::string_view text, const std::string& path) {
    // A byte order mark is invisible in an editor, and xinetd (which knows only ASCII
    // blanks) would take it as the first word of the file; the file's author meant none.
    if (text.starts_with(kUtf8Bom)) {
      text.remove_prefix(kUtf8Bom.size());
      config_.findings.push_back(
          {Severity::warning, path, 1, "",
           "a UTF-8 byte order mark starts the file; ignored (xinetd would take it as part of "
           "the first line's first word)"});
    }
    Lines lines(text);
    Line line;
    while (lines.next(line)) {
      auto words = split_blanks(line.text);
      const std::string& keyword = words.front();
      if (keyword == "include" || keyword == "includedir") {
        if (words.size() < 2) {
          file_error(path, line.number, keyword + " needs a path");
          continue;
        }
        std::string target = relative_to(words[1], path);
        if (keyword == "include") {
          include_file(target, path, line.number);
        } else {
          include_directory(target, path, line.number);
        }
        continue;
      }
      XinetdEntry entry;
      entry.file = path;
      entry.line = line.number;
      if (keyword == "defaults") {
        entry.is_defaults = true;
      } else if (keyword == "service" && words.size() >= 2) {
        entry.name = words[1];
      } else {
        file_error(path, line.number,
                   keyword == "service"
                       ? "service name missing"
                       : "expected 'service NAME', 'defaults', 'include' or 'includedir', found '" +
                             keyword + "'; skipping to the next '}'");
        skip_entry(lines, path, line.number);
        flush_swallowed();
        continue;
      }
      Line brace;
      if (!lines.next(brace) || !is_only(brace.text, '{')) {
        entry_error(
            entry, brace.number == 0 ? line.number : brace.number,
            "missing '{' on a line of its own after '" + std::string(strip(line.text)) + "'");
        if (brace.number != 0) skip_entry(lines, path, line.number);
        push_entry(std::move(entry));
        continue;
      }
      parse_body(lines, entry);
      push_entry(std::move(entry));
    }
  }

  // top: a path named by the user rather than by an include line.
  void include_file(const std::string& path, const std::string& from, unsigned line,
                    bool top = false) {
    if (!enter(path, from, line)) return;
    auto text = system_.read_file(path);
    if (!text) {
      file_error(from, line,
                 (top ? "cannot read " : "cannot read included file ") + path + ": " +
                     text.error().to_string());
      return;
    }
    stack_.push_back(path);
    parse(*text, path);
    stack_.pop_back();
  }

  void include_directory(const std::string& dir, const std::string& from, unsigned line) {
    auto names = system_.list_directory(dir);
    if (!names) {
      file_error(from, line,
                 "cannot read included directory " + dir + ": " + names.error().to_string());
      return;
    }
    // handle_includedir(): C-locale order; names with '.' or ending in '~' are editor and
    // package-manager leftovers; only regular files.
    std::sort(names->begin(), names->end());
    for (const std::string& name : *names) {
      if (name.empty() || name.find('.') != std::string::npos || name.back() == '~') continue;
      std::string path = dir + (dir.ends_with('/') ? "" : "/") + name;
      if (!system_.is_regular_file(path)) continue;
      include_file(path, from, line);
    }
  }

 private:
  static std::string_view strip(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
  }

  void file_error(const std::string& file, unsigned line, std::string message) {
    config_.findings.push_back({Severity::error, file, line, "", std::move(message)});
  }

  void entry_error(XinetdEntry& entry, unsigned line, std::string message) {
    entry.errors.push_back({Severity::error, entry.file, line,
                            entry.is_defaults ? "defaults" : "service " + entry.name,
                            std::move(message)});
  }

  // xinetd's skip_entry(): everything up to a line holding only '}'. A "service NAME" line
  // passed over on the way is a service xinetd never reads: it becomes a spoiled entry, so
  // that the service is reported (and counted) by name rather than vanishing.
  void skip_entry(Lines& lines, const std::string& path, unsigned fault_line) {
    Line line;
    while (lines.next(line)) {
      if (is_only(line.text, '}')) return;
      note_swallowed(line, path, fault_line);
    }
  }

  void note_swallowed(const Line& line, const std::string& path, unsigned fault_line) {
    auto words = split_blanks(line.text);
    if (words.size() < 2 || words.front() != "service") return;
    XinetdEntry entry;
    entry.file = path;
    entry.line = line.number;
    entry.name = words[1];
    entry_error(entry, line.number,
                "never read: after the error at line " + std::to_string(fault_line) +
                    ", xinetd skips everything up to the next line holding only '}'");
    swallowed_.push_back(std::move(entry));
  }

  // Swallowed services follow the entry whose fault swallowed them, in reading order.
  void push_entry(XinetdEntry entry) {
    config_.entries.push_back(std::move(entry));
    flush_swallowed();
  }
  void flush_swallowed() {
    for (XinetdEntry& e : swallowed_) config_.entries.push_back(std::move(e));
    swallowed_.clear();
  }

  void parse_body(Lines& lines, XinetdEntry& entry) {
    Line line;
    while (lines.next(line)) {
      if (is_only(line.text, '}')) return;
      auto attribute = parse_attribute(line, entry);
      if (!attribute) {
        note_swallowed(line, entry.file, line.number);
        skip_entry(lines, entry.file, line.number);
        return;
      }
      entry.attributes.push_back(std::move(*attribute));
    }
    entry_error(entry, entry.line, "missing '}' before the end of the file");
  }

  // xinetd's get_attr_op() and parse_line(): "name OP values", a blank before OP.
  std::optional<XinetdAttribute> parse_attribute(const Line& line, XinetdEntry& entry) {
    std::string_view p = line.text;
    while (!p.empty() && is_blank(p.front())) p.remove_prefix(1);
    std::size_t end = 0;
    while (end < p.size() && !is_blank(p[end]) && p[end] != '=') ++end;
    std::string name(p.substr(0, end));
    if (end == p.size()) {
      entry_error(entry, line.number, "nothing after attribute '" + name + "'");
      return std::nullopt;
    }
    if (p[end] == '=') {
      entry_error(entry, line.number, "attribute '" + name + "' needs a blank before its operator");
      return std::nullopt;
    }
    p.remove_prefix(end);
    while (!p.empty() && is_blank(p.front())) p.remove_prefix(1);
    XinetdAttribute a;
    a.name = std::move(name);
    a.file = entry.file;
    a.line = line.number;
    if (p.substr(0, 1) == "=") {
      a.op = AssignOp::set;
      p.remove_prefix(1);
    } else if (p.substr(0, 2) == "+=" || p.substr(0, 2) == "-=") {
      a.op = p.front() == '+' ? AssignOp::add : AssignOp::remove;
      p.remove_prefix(2);
    } else {
      entry_error(entry, line.number, "bad operator for attribute '" + a.name + "'");
      return std::nullopt;
    }
    a.values = split_blanks(p);
    return a;
  }

  bool enter(const std::string& path, const std::string& from, unsigned line) {
    if (static_cast<int>(stack_.size()) >= kMaxIncludeDepth) {
      file_error(from, line,
                 "includes nested more than " + std::to_string(kMaxIncludeDepth) +
                     " deep; not reading " + path);
      return false;
    }
    if (std::find(stack_.begin(), stack_.end(), path) != stack_.end()) {
      file_error(from, line, "include loop: " + path + " is already being read");
      return false;
    }
    return true;
  }

  const System& system_;
  XinetdConfig& config_;
  std::vector<std::string>& stack_;
  std::vector<XinetdEntry> swallowed_;  ///< Services a skip passed over, not yet pushed.
};

}  // namespace

std::string XinetdAttribute::text() const {
  std::string out = name + (op == AssignOp::set ? " =" : op == AssignOp::add ? " +=" : " -=");
  for (const auto& v : values) out += " " + v;
  return out;
}

void parse_xinetd_text(std::string_view text, const std::string& path, const System& system,
                       XinetdConfig& config) {
  std::vector<std::string> stack = {path};
  Parser(system, config, stack).parse(text, path);
}

XinetdConfig read_xinetd(const std::vector<std::string>& paths, const System& system) {
  XinetdConfig config;
  std::vector<std::string> stack;
  Parser parser(system, config, stack);
  for (const std::string& path : paths) {
    if (system.is_directory(path)) {
      parser.include_directory(path, path, 0);
    } else {
      parser.include_file(path, path, 0, true);
    }
  }
  return config;
}

}  // namespace usherd::importer

// Command-line parsing and $VAR expansion; see exec_command.h.
#include "units/exec_command.h"

#include "units/environment.h"
#include "units/values.h"

namespace usherd::units {
namespace {

constexpr unsigned kWordFlags = extract_unquote | extract_cunescape;

// "a/./b", "a//b", "a/../b" and a trailing '/' are not normalized paths.
bool is_normalized_absolute(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  if (path.size() > 1 && path.back() == '/') return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return path.size() == 1;
    start = end + 1;
  }
  return true;
}

bool is_valid_filename(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.size() <= 255;
}

void skip_spaces(std::string_view& p) {
  while (!p.empty() && is_whitespace(p.front())) p.remove_prefix(1);
}

// True when p (spaces skipped) starts with the raw word w followed by whitespace or the end.
bool starts_with_word(std::string_view p, std::string_view w) {
  return p.substr(0, w.size()) == w && (p.size() == w.size() || is_whitespace(p[w.size()]));
}

}  // namespace

Result<std::vector<ExecCommand>> parse_exec_value(std::string_view value) {
  std::vector<ExecCommand> commands;
  std::string_view p = value;
  for (;;) {
    skip_spaces(p);
    if (p.empty()) break;
    auto first = extract_first_word(p, kWordFlags);
    if (!first) return fail(first.error().message);
    if (!*first) break;
    std::string_view f = **first;
    ExecCommand cmd;
    bool separate_argv0 = false;
    bool ambient = false;
    // systemd's prefix loop: each character once, in any order; a repeat ends the prefixes.
    for (;; f.remove_prefix(1)) {
      if (f.empty()) break;
      char c = f.front();
      if (c == '-' && !cmd.ignore_failure) {
        cmd.ignore_failure = true;
      } else if (c == '@' && !separate_argv0) {
        separate_argv0 = true;
      } else if (c == ':' && !cmd.no_expand) {
        cmd.no_expand = true;
      } else if (c == '+' && !cmd.full_privileges && !cmd.skip_credentials && !ambient) {
        cmd.full_privileges = true;
      } else if (c == '!' && !cmd.full_privileges && !cmd.skip_credentials && !ambient) {
        cmd.skip_credentials = true;
      } else if (c == '!' && !cmd.full_privileges && !ambient) {
        // "!!": only without ambient capabilities, which every kernel usherd supports has,
        // so the command runs with normal credentials.
        cmd.skip_credentials = false;
        ambient = true;
      } else {
        break;
      }
    }
    if (f.empty()) return fail("empty executable path");
    cmd.path = std::string(f);
    if (!is_normalized_absolute(cmd.path) && !is_valid_filename(cmd.path)) {
      return fail("neither a valid executable name nor an absolute normalized path");
    }
    if (separate_argv0) {
      skip_spaces(p);
      auto argv0 = extract_first_word(p, kWordFlags);
      if (!argv0) return fail(argv0.error().message);
      if (!*argv0 || (*argv0)->empty()) return fail("'@' needs a word for argv[0]");
      cmd.argv.push_back(std::move(**argv0));
    } else {
      cmd.argv.push_back(cmd.path);
    }
    bool more = false;
    for (;;) {
      skip_spaces(p);
      if (p.empty()) break;
      if (starts_with_word(p, ";")) {
        p.remove_prefix(1);
        more = true;
        break;
      }
      if (starts_with_word(p, "\\;")) {
        p.remove_prefix(2);
        cmd.argv.emplace_back(";");
        continue;
      }
      auto word = extract_first_word(p, kWordFlags);
      if (!word) return fail(word.error().message);
      if (!*word) break;
      cmd.argv.push_back(std::move(**word));
    }
    commands.push_back(std::move(cmd));
    if (!more) break;
  }
  if (commands.empty()) return fail("empty command line");
  return commands;
}

namespace {

bool is_env_name_char(char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

// Replaces ${VAR}, ${VAR:-default}, ${VAR:+alternate} and $$ inside one word.
std::string expand_braced(std::string_view word, const std::vector<std::string>& env) {
  std::string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (word[i] != '$' || i + 1 == word.size()) {
      out += word[i];
      continue;
    }
    char next = word[i + 1];
    if (next == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (next != '{') {
      out += '$';
      continue;
    }
    std::size_t close = word.find('}', i + 2);
    if (close == std::string_view::npos) {
      out += word.substr(i);
      break;
    }
    std::string_view inner = word.substr(i + 2, close - i - 2);
    std::size_t colon = inner.find(':');
    std::string_view name = inner.substr(0, colon);
    std::optional<std::string_view> value = find_environment(env, name);
    if (colon != std::string_view::npos && colon + 1 < inner.size() &&
        (inner[colon + 1] == '-' || inner[colon + 1] == '+')) {
      std::string_view alt = inner.substr(colon + 2);
      bool set = value && !value->empty();
      if (inner[colon + 1] == '-') {
        out += set ? *value : alt;
      } else if (set) {
        out += alt;
      }
    } else if (value) {
      out += *value;
    }
    i = close;
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> expand_exec_argv(const ExecCommand& command,
                                                  const std::vector<std::string>& environment) {
  if (command.no_expand) return command.argv;
  std::vector<std::string> out;
  out.reserve(command.argv.size());
  for (std::size_t i = 0; i < command.argv.size(); ++i) {
    const std::string& word = command.argv[i];
    bool whole_variable =
        i > 0 && word.size() > 1 && word[0] == '$' && is_env_name_char(word[1], true);
    for (std::size_t k = 2; whole_variable && k < word.size(); ++k) {
      whole_variable = is_env_name_char(word[k], false);
    }
    if (whole_variable) {
      std::optional<std::string_view> value =
          find_environment(environment, std::string_view(word).substr(1));
      if (!value) continue;
      auto words = split_words(*value, extract_unquote | extract_relax);
      if (!words) return fail("invalid value of $" + word.substr(1) + ": " + words.error().message);
      for (auto& w : *words) out.push_back(std::move(w));
      continue;
    }
    out.push_back(expand_braced(word, environment));
  }
  return out;
}

}  // namespace usherd::units

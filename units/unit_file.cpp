// Line syntax of unit files; see unit_file.h. Messages follow systemd 252's conf-parser.c.
#include "units/unit_file.h"

#include <algorithm>

#include "units/values.h"

namespace usherd::units {
namespace {

bool is_comment(std::string_view line) {
  std::string_view t = strip_whitespace(line);
  return !t.empty() && (t.front() == '#' || t.front() == ';');
}

// True when the line ends in an unescaped backslash (an odd run of trailing backslashes).
bool ends_in_continuation(std::string_view line) {
  bool escaped = false;
  for (char c : line) escaped = escaped ? false : c == '\\';
  return escaped;
}

}  // namespace

std::vector<Entry> parse_unit_text(std::string_view text, const std::string& file,
                                   const std::vector<std::string_view>& known_sections,
                                   std::vector<Diagnostic>& diagnostics) {
  DiagnosticSink sink(diagnostics);
  std::vector<Entry> entries;
  std::string section;
  bool section_known = false;
  bool section_ignored = false;  // an X- or unknown section: its assignments are dropped
  std::string continuation;
  bool continuing = false;
  unsigned line_number = 0;

  std::size_t pos = 0;
  while (pos <= text.size()) {
    if (pos == text.size() && !continuing) break;
    std::size_t end = text.find('\n', pos);
    bool last = end == std::string_view::npos;
    std::string_view raw = text.substr(pos, last ? std::string_view::npos : end - pos);
    pos = last ? text.size() + 1 : end + 1;
    ++line_number;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);

    // Comment lines are skipped even in the middle of a continuation.
    if (is_comment(raw)) {
      if (!last) continue;
      raw = {};
    }
    std::string joined;
    if (continuing) {
      joined = continuation + std::string(raw);
    } else {
      joined = std::string(raw);
    }
    if (ends_in_continuation(joined) && !last) {
      joined.back() = ' ';
      continuation = std::move(joined);
      continuing = true;
      continue;
    }
    continuing = false;
    continuation.clear();

    std::string_view l = strip_whitespace(joined);
    if (l.empty()) continue;
    if (l.front() == '[') {
      if (l.back() != ']' || l.size() < 3) {
        sink.warning(file, line_number, "Invalid section header '" + std::string(l) + "'");
        section.clear();
        section_known = false;
        section_ignored = true;
        continue;
      }
      section = std::string(l.substr(1, l.size() - 2));
      section_known =
          std::find(known_sections.begin(), known_sections.end(), section) != known_sections.end();
      section_ignored = !section_known;
      if (!section_known && section.rfind("X-", 0) != 0) {
        sink.warning(file, line_number, "Unknown section '" + section + "'. Ignoring.");
      }
      continue;
    }
    if (section_ignored) continue;
    if (!section_known) {
      sink.warning(file, line_number, "Assignment outside of section. Ignoring.");
      continue;
    }
    std::size_t eq = l.find('=');
    if (eq == std::string_view::npos) {
      sink.warning(file, line_number, "Missing '=', ignoring line.");
      continue;
    }
    std::string_view key = strip_whitespace(l.substr(0, eq));
    if (key.empty()) {
      sink.warning(file, line_number, "Missing key name before '=', ignoring line.");
      continue;
    }
    entries.push_back(Entry{section, std::string(key),
                            std::string(strip_whitespace(l.substr(eq + 1))), file, line_number});
  }
  return entries;
}

}  // namespace usherd::units

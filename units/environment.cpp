// Environment lists and environment files; see environment.h.
#include "units/environment.h"

#include "units/values.h"

namespace usherd::units {

bool is_valid_environment_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool is_valid_environment_assignment(std::string_view assignment) {
  std::size_t eq = assignment.find('=');
  return eq != std::string_view::npos && is_valid_environment_name(assignment.substr(0, eq));
}

std::optional<std::string_view> find_environment(const std::vector<std::string>& environment,
                                                 std::string_view name) {
  for (auto it = environment.rbegin(); it != environment.rend(); ++it) {
    if (it->size() > name.size() && (*it)[name.size()] == '=' &&
        std::string_view(*it).substr(0, name.size()) == name) {
      return std::string_view(*it).substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

void set_environment(std::vector<std::string>& list, std::string assignment) {
  std::size_t eq = assignment.find('=');
  std::string_view name = std::string_view(assignment).substr(0, eq + 1);  // includes '='
  for (auto& existing : list) {
    if (std::string_view(existing).substr(0, name.size()) == name) {
      existing = std::move(assignment);
      return;
    }
  }
  list.push_back(std::move(assignment));
}

EnvironmentFileContents parse_environment_file(std::string_view text) {
  EnvironmentFileContents out;
  std::size_t i = 0;
  unsigned line = 1;
  auto at_end = [&] { return i >= text.size(); };
  auto skip_to_eol = [&] {
    while (!at_end() && text[i] != '\n') ++i;
  };
  while (!at_end()) {
    // Leading whitespace, then a comment, an empty line or a key.
    while (!at_end() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) ++i;
    if (at_end()) break;
    if (text[i] == '\n') {
      ++i;
      ++line;
      continue;
    }
    unsigned start_line = line;
    if (text[i] == '#' || text[i] == ';') {
      skip_to_eol();
      continue;
    }
    std::size_t key_start = i;
    while (!at_end() && text[i] != '=' && text[i] != '\n') ++i;
    if (at_end() || text[i] == '\n') {
      out.invalid_lines.push_back(start_line);
      continue;
    }
    std::string key(strip_whitespace(text.substr(key_start, i - key_start)));
    ++i;  // '='
    while (!at_end() && (text[i] == ' ' || text[i] == '\t')) ++i;
    std::string value;
    std::size_t trailing_ws_from = std::string::npos;  // unquoted whitespace to drop at the end
    while (!at_end() && text[i] != '\n') {
      char c = text[i];
      if (c == '\'') {
        ++i;
        while (!at_end() && text[i] != '\'') {
          if (text[i] == '\n') ++line;
          value += text[i++];
        }
        if (!at_end()) ++i;
        trailing_ws_from = std::string::npos;
      } else if (c == '"') {
        ++i;
        while (!at_end() && text[i] != '"') {
          if (text[i] == '\\' && i + 1 < text.size()) {
            char n = text[i + 1];
            if (n == '"' || n == '\\' || n == '$' || n == '`') {
              value += n;
              i += 2;
              continue;
            }
            if (n == '\n') {
              ++line;
              i += 2;
              continue;
            }
          }
          if (text[i] == '\n') ++line;
          value += text[i++];
        }
        if (!at_end()) ++i;
        trailing_ws_from = std::string::npos;
      } else if (c == '\\' && i + 1 < text.size()) {
        if (text[i + 1] == '\n') {
          ++line;
        } else {
          value += text[i + 1];
        }
        i += 2;
        trailing_ws_from = std::string::npos;
      } else {
        if (c == ' ' || c == '\t' || c == '\r') {
          if (trailing_ws_from == std::string::npos) trailing_ws_from = value.size();
        } else {
          trailing_ws_from = std::string::npos;
        }
        value += c;
        ++i;
      }
    }
    if (trailing_ws_from != std::string::npos) value.resize(trailing_ws_from);
    if (!is_valid_environment_name(key)) {
      out.invalid_lines.push_back(start_line);
      continue;
    }
    set_environment(out.assignments, key + "=" + value);
  }
  return out;
}

}  // namespace usherd::units

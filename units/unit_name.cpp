// Unit-name parsing and unescaping; see unit_name.h.
#include "units/unit_name.h"

namespace usherd::units {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
         c == '_' || c == '.' || c == '-' || c == '\\';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string UnitName::template_name() const {
  if (!has_at) return name;
  return prefix + "@." + suffix;
}

std::string UnitName::with_instance(std::string_view new_instance) const {
  return prefix + "@" + std::string(new_instance) + "." + suffix;
}

std::optional<UnitName> parse_unit_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return std::nullopt;
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return std::nullopt;
  UnitName out;
  out.name = std::string(name);
  out.suffix = std::string(name.substr(dot + 1));
  for (char c : out.suffix) {
    if (!((c >= 'a' && c <= 'z') || c == '-')) return std::nullopt;
  }
  std::string_view stem = name.substr(0, dot);
  std::size_t at = stem.find('@');
  std::string_view prefix = at == std::string_view::npos ? stem : stem.substr(0, at);
  if (prefix.empty()) return std::nullopt;
  for (char c : prefix) {
    if (!is_name_char(c)) return std::nullopt;
  }
  out.prefix = std::string(prefix);
  if (at != std::string_view::npos) {
    out.has_at = true;
    std::string_view instance = stem.substr(at + 1);
    for (char c : instance) {
      // Instances may contain '@' (systemd allows it after the first one).
      if (!is_name_char(c) && c != '@') return std::nullopt;
    }
    out.instance = std::string(instance);
  }
  return out;
}

std::string unit_name_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '-') {
      out += '/';
    } else if (c == '\\' && i + 3 < text.size() && text[i + 1] == 'x' &&
               hex_value(text[i + 2]) >= 0 && hex_value(text[i + 3]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 2]) * 16 + hex_value(text[i + 3]));
      i += 3;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace usherd::units

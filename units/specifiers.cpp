// Specifier expansion; see specifiers.h.
#include "units/specifiers.h"

namespace usherd::units {

Result<std::string> expand_specifiers(std::string_view text, const UnitName& unit,
                                      bool* uses_instance) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 1 == text.size()) return fail("trailing '%' (write %% for a literal percent sign)");
    char spec = text[++i];
    bool instance_dependent = false;
    switch (spec) {
      case '%':
        out += '%';
        break;
      case 'n':
        out += unit.name;
        instance_dependent = true;
        break;
      case 'N':
        out += unit.name.substr(0, unit.name.size() - unit.suffix.size() - 1);
        instance_dependent = true;
        break;
      case 'p':
        out += unit.prefix;
        break;
      case 'P':
        out += unit_name_unescape(unit.prefix);
        break;
      case 'i':
        out += unit.instance;
        instance_dependent = true;
        break;
      case 'I':
        out += unit_name_unescape(unit.instance);
        instance_dependent = true;
        break;
      case 'j':
      case 'J': {
        std::size_t dash = unit.prefix.rfind('-');
        std::string last = dash == std::string::npos ? unit.prefix : unit.prefix.substr(dash + 1);
        out += spec == 'j' ? last : unit_name_unescape(last);
        break;
      }
      case 'f': {
        std::string unescaped = unit_name_unescape(unit.has_at ? unit.instance : unit.prefix);
        if (unescaped.empty() || unescaped.front() != '/') out += '/';
        out += unescaped;
        instance_dependent = true;
        break;
      }
      case 't':
        out += "/run";
        break;
      case 'T':
        out += "/tmp";
        break;
      case 'V':
        out += "/var/tmp";
        break;
      case 'S':
        out += "/var/lib";
        break;
      case 'C':
        out += "/var/cache";
        break;
      case 'L':
        out += "/var/log";
        break;
      case 'E':
        out += "/etc";
        break;
      default:
        return fail(std::string("unknown specifier '%") + spec + "'");
    }
    if (instance_dependent && uses_instance != nullptr) *uses_instance = true;
  }
  return out;
}

}  // namespace usherd::units

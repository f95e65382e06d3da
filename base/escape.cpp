// escape_untrusted() and quote_untrusted() (see escape.h).
#include "base/escape.h"

#include <cstdio>

namespace usherd {

std::string escape_untrusted(std::string_view text, std::size_t max_len, bool escape_space) {
  std::string out;
  out.reserve(std::min(text.size(), max_len) + 2);
  std::size_t n = 0;
  for (unsigned char c : text) {
    if (n++ == max_len) {
      out += "...";
      break;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c >= 0x7f || (escape_space && c == ' ')) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string quote_untrusted(std::string_view text, std::size_t max_len) {
  return '"' + escape_untrusted(text, max_len) + '"';
}

}  // namespace usherd

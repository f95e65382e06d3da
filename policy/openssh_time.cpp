// convtime() semantics for parse_openssh_time(), and its inverse.
#include "policy/openssh_time.h"

#include <cstdint>
#include <limits>

namespace usherd::policy {

ParseResult<std::chrono::seconds> parse_openssh_time(std::string_view text) {
  const auto error = [&] {
    return parse_error("invalid time \"" + std::string(text) +
                       "\" (expected e.g. 90, 90s, 10m, 1h30m)");
  };
  constexpr std::int64_t kMax = std::numeric_limits<int>::max();
  if (text.empty()) return error();
  std::int64_t total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::int64_t number = 0;
    const std::size_t digits_begin = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      number = number * 10 + (text[pos] - '0');
      if (number > kMax) return error();
      ++pos;
    }
    if (pos == digits_begin) return error();
    std::int64_t multiplier = 1;
    if (pos < text.size()) {
      switch (text[pos]) {
        case 's':
        case 'S':
          break;
        case 'm':
        case 'M':
          multiplier = 60;
          break;
        case 'h':
        case 'H':
          multiplier = 60 * 60;
          break;
        case 'd':
        case 'D':
          multiplier = 24 * 60 * 60;
          break;
        case 'w':
        case 'W':
          multiplier = 7 * 24 * 60 * 60;
          break;
        default:
          return error();
      }
      ++pos;
    }
    total += number * multiplier;
    if (total > kMax) return error();
  }
  return std::chrono::seconds(total);
}

std::string format_openssh_time(std::chrono::seconds duration) {
  std::int64_t left = duration.count();
  if (left <= 0) return "0s";
  static constexpr struct {
    std::int64_t seconds;
    char unit;
  } kUnits[] = {{7 * 24 * 3600, 'w'}, {24 * 3600, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  std::string text;
  for (const auto& unit : kUnits) {
    if (left >= unit.seconds) {
      text += std::to_string(left / unit.seconds);
      text += unit.unit;
      left %= unit.seconds;
    }
  }
  return text;
}

}  // namespace usherd::policy

// convtime() and convtime_double() semantics, and their inverses.
#include "policy/openssh_time.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <limits>

namespace usherd::policy {

namespace {

// The seconds in one unit letter of misc.c's convtime(), either case; 0 for any other letter.
std::int64_t unit_seconds(char unit) {
  switch (unit) {
    case 's':
    case 'S':
      return 1;
    case 'm':
    case 'M':
      return 60;
    case 'h':
    case 'H':
      return 60 * 60;
    case 'd':
    case 'D':
      return 24 * 60 * 60;
    case 'w':
    case 'W':
      return 7 * 24 * 60 * 60;
    default:
      return 0;
  }
}

}  // namespace

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
      multiplier = unit_seconds(text[pos]);
      if (multiplier == 0) return error();
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

ParseResult<std::chrono::duration<double>> parse_openssh_seconds(std::string_view text) {
  const auto error = [&] {
    return parse_error("invalid time \"" + std::string(text) +
                       "\" (expected e.g. 90, 90s, 10m, 1h30m)");
  };
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  // convtime_double() reads a C string: a NUL ends it early, as it would end sshd's word.
  const std::string s(text.substr(0, text.find('\0')));
  if (s.empty()) return error();
  double total = 0.0;
  bool seen_seconds = false;
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (!is_digit(s[pos]) && s[pos] != '.') return error();
    const char* begin = s.c_str() + pos;
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(begin, &end);
    if (value < 0 || errno != 0 || end == begin) return error();
    // Only decimal forms: strtod must have read exactly the run of digits and points.
    const std::size_t run = s.find_first_not_of("0123456789.", pos);
    const std::size_t run_end = run == std::string::npos ? s.size() : run;
    if (s.c_str() + run_end != end) return error();
    pos = run_end;
    // The end of the text is a seconds term too; only one seconds term is allowed.
    const char unit = pos < s.size() ? s[pos] : 's';
    const double multiplier = static_cast<double>(unit_seconds(unit));
    if (multiplier == 0) return error();
    if (multiplier == 1) {
      if (seen_seconds) return error();
      seen_seconds = true;
    }
    // A fraction only on seconds, and with a digit after the point ("1." is refused).
    if (std::string_view(begin, static_cast<std::size_t>(end - begin)).find('.') !=
        std::string_view::npos) {
      if (multiplier > 1) return error();
      if (!is_digit(*(end - 1))) return error();
    }
    total += value * multiplier;
    if (pos < s.size()) ++pos;
  }
  return std::chrono::duration<double>(total);
}

std::string format_openssh_seconds(std::chrono::microseconds duration) {
  using std::chrono::microseconds;
  if (duration.count() <= 0) return "0s";
  const auto whole = std::chrono::duration_cast<std::chrono::seconds>(duration);
  const auto fraction = (duration - whole).count();  // 0..999999 microseconds
  if (fraction == 0) return format_openssh_time(whole);
  std::string text = whole.count() >= 60 ? format_openssh_time(whole) : "";
  // The seconds term carries the fraction; drop the whole seconds format_openssh_time wrote.
  if (!text.empty() && text.back() == 's') {
    std::size_t digits = text.size() - 1;
    while (digits > 0 && text[digits - 1] >= '0' && text[digits - 1] <= '9') --digits;
    text.resize(digits);
  }
  std::string micro = std::to_string(fraction);
  micro.insert(0, 6 - micro.size(), '0');
  while (micro.back() == '0') micro.pop_back();
  text += std::to_string(whole.count() % 60) + "." + micro + "s";
  return text;
}

}  // namespace usherd::policy

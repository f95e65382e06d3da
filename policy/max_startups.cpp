// Parsing, formatting and the drop curve of MaxStartups.
#include "policy/max_startups.h"

#include <limits>

#include "policy/decimal.h"

namespace usherd::policy {

namespace {

std::string in_quotes(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// OpenSSH keeps these in an int.
constexpr std::uint64_t kMaxValue = std::numeric_limits<int>::max();

}  // namespace

ParseResult<MaxStartups> MaxStartups::parse(std::string_view text) {
  const auto syntax_error = [&] {
    return parse_error("expected start:rate:full or a single number, got " + in_quotes(text));
  };
  MaxStartups value;
  const auto first = text.find(':');
  if (first == std::string_view::npos) {
    const auto n = parse_decimal(text, kMaxValue);
    if (!n) return syntax_error();
    value.start = value.full = static_cast<unsigned>(*n);
  } else {
    const auto second = text.find(':', first + 1);
    if (second == std::string_view::npos) return syntax_error();
    const auto start = parse_decimal(text.substr(0, first), kMaxValue);
    const auto rate = parse_decimal(text.substr(first + 1, second - first - 1), kMaxValue);
    const auto full = parse_decimal(text.substr(second + 1), kMaxValue);
    if (!start || !rate || !full) return syntax_error();
    value.start = static_cast<unsigned>(*start);
    value.rate = static_cast<unsigned>(*rate);
    value.full = static_cast<unsigned>(*full);
    if (value.start > value.full) {
      return parse_error("start must not exceed full in " + in_quotes(text));
    }
    if (value.rate < 1 || value.rate > 100) {
      return parse_error("rate must be between 1 and 100 in " + in_quotes(text));
    }
  }
  if (value.start == 0) return parse_error("start must be greater than 0 in " + in_quotes(text));
  return value;
}

std::string MaxStartups::to_string() const {
  return std::to_string(start) + ":" + std::to_string(rate) + ":" + std::to_string(full);
}

unsigned MaxStartups::drop_probability_percent(unsigned n) const {
  // sshd.c should_drop_connection(), term by term.
  if (n < start) return 0;
  if (n >= full) return 100;
  if (rate >= 100) return 100;
  unsigned long long p = 100 - rate;
  p *= n - start;
  p /= full - start;
  p += rate;
  return static_cast<unsigned>(p);
}

ParseResult<std::optional<unsigned>> parse_per_source_max_startups(std::string_view text) {
  if (text == "none") return std::optional<unsigned>();
  const auto n = parse_decimal(text, kMaxValue);
  if (!n || *n == 0) {
    return parse_error("expected a positive number or \"none\", got " + in_quotes(text));
  }
  return std::optional<unsigned>(static_cast<unsigned>(*n));
}

}  // namespace usherd::policy

// Strict unsigned decimal parsing shared by the policy parsers.
//
// Only ASCII digits are accepted: no sign, no spaces, no base prefix, no trailing text, so
// "+5", " 5" and "5x" are errors rather than the 5 that strtoul or sscanf would return.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>

namespace usherd::policy {

/// The value of text when it is 1+ digits and at most max; otherwise nullopt.
inline std::optional<std::uint64_t> parse_decimal(
    std::string_view text, std::uint64_t max = std::numeric_limits<std::uint32_t>::max()) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

}  // namespace usherd::policy

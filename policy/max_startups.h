// MaxStartups: OpenSSH's limit on connections that have not finished starting up.
//
// sshd_config(5): "start:rate:full" — below start every connection is admitted; from start
// on, a connection is refused with probability rate% rising linearly to 100% at full; at or
// above full every connection is refused. A single number N means N:30:N, a hard cap.
// The probability is computed exactly as sshd.c's should_drop_connection() does, in integer
// arithmetic, so usherd drops at the same rates as sshd itself.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/parse_result.h"

namespace usherd::policy {

/// OpenSSH's MaxStartups=start:rate:full (default 10:30:100).
struct MaxStartups {
  unsigned start = 10;  ///< Startups at which random early drop begins.
  unsigned rate = 30;   ///< Drop probability in percent at start, 1..100.
  unsigned full = 100;  ///< Startups at which every connection is refused.

  /// "start:rate:full" or "N" (= N:30:N), validated as servconf.c does: start > 0,
  /// start <= full, 1 <= rate <= 100.
  static ParseResult<MaxStartups> parse(std::string_view text);
  /// "10:30:100".
  std::string to_string() const;
  /// Percent chance of refusing a connection when n startups are already in progress:
  /// 0 below start, 100 at or above full (and at or above start when rate is 100).
  unsigned drop_probability_percent(unsigned n) const;

  /// Equal when all three numbers are.
  friend bool operator==(const MaxStartups&, const MaxStartups&) = default;
};

/// PerSourceMaxStartups=: a positive number, or "none" (no limit, nullopt).
ParseResult<std::optional<unsigned>> parse_per_source_max_startups(std::string_view text);

}  // namespace usherd::policy

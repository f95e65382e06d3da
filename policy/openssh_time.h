// OpenSSH's time format (sshd_config(5) "TIME FORMATS", misc.c convtime()).
//
// A sequence of number[unit] terms, summed: units s (seconds, also the default), m, h, d, w,
// upper or lower case. "90" and "90s" are 90 seconds, "1h30m" is 5400 seconds. Like convtime(),
// the total must fit an int; an empty string, a unit without a number and unknown units are
// errors. OpenSSH 10.3 also reads fractional seconds where a penalty is given
// (convtime_double()): parse_openssh_seconds().
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "policy/parse_result.h"

namespace usherd::policy {

/// Parses an OpenSSH time value into seconds.
ParseResult<std::chrono::seconds> parse_openssh_time(std::string_view text);

/// Formats seconds in the same syntax, largest units first: 90 -> "1m30s",
/// 600 -> "10m", 0 -> "0s".
std::string format_openssh_time(std::chrono::seconds duration);

/// Parses an OpenSSH time value with fractional seconds, as OpenSSH 10.3's convtime_double()
/// (misc.c) does: terms number[unit] summed, a fraction only on a seconds term ("0.5s",
/// "1m0.25", ".5"), at most one seconds term, no upper bound. What it accepts is exactly what
/// sshd accepts for PerSourcePenalties= times.
ParseResult<std::chrono::duration<double>> parse_openssh_seconds(std::string_view text);

/// Formats a duration with microsecond precision in that syntax, largest units first and the
/// fraction on the seconds: 90.5 s -> "1m30.5s", 0.25 s -> "0.25s", 0 -> "0s".
std::string format_openssh_seconds(std::chrono::microseconds duration);

}  // namespace usherd::policy

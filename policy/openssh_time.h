// OpenSSH's time format (sshd_config(5) "TIME FORMATS", misc.c convtime()).
//
// A sequence of number[unit] terms, summed: units s (seconds, also the default), m, h, d, w,
// upper or lower case. "90" and "90s" are 90 seconds, "1h30m" is 5400 seconds. Like convtime(),
// the total must fit an int; an empty string, a unit without a number and unknown units are
// errors.
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

}  // namespace usherd::policy

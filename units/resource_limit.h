// Limit*= settings (systemd.exec(5), "PROCESS PROPERTIES"): "soft:hard" or one value for both,
// "infinity" for RLIM_INFINITY. Units follow systemd per resource: sizes in bytes with K/M/G
// suffixes for the memory-like limits, seconds (or a time span) for LimitCPU=, microseconds
// for LimitRTTIME=, a nice level ("-5", "+3") or raw 0..40 value for LimitNICE=, plain counts
// for the rest.
#pragma once

#include <optional>
#include <string_view>

#include "base/result.h"
#include "units/config.h"

namespace usherd::units {

/// The RLIMIT_* constant for a key such as "LimitNOFILE", or nullopt when it is not one.
std::optional<int> resource_for_key(std::string_view key);

/// Parses the value of a Limit*= key for resource.
Result<ResourceLimit> parse_resource_limit(int resource, std::string_view value);

}  // namespace usherd::units

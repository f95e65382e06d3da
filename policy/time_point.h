// TimePoint: the only notion of time in policy/.
//
// The supervisor reads the monotonic clock once per event and passes the value down; nothing
// in policy/ reads a clock, so tests move time forward by adding to a TimePoint.
#pragma once

#include <chrono>

namespace usherd::policy {

/// A monotonic instant, passed in by the caller.
using TimePoint = std::chrono::steady_clock::time_point;

}  // namespace usherd::policy

// RateLimit: systemd's fixed-window rate limit (src/basic/ratelimit.c ratelimit_below()),
// used for TriggerLimitIntervalSec=/TriggerLimitBurst=.
//
// A window opens at the first event and lasts interval; the first burst events in it pass,
// later ones are refused (and still counted). The first event more than interval after the
// window opened starts a new window. Unlike systemd, hitting the limit never fails the socket:
// the admission engine drops the connection with reason "rate" and carries on.
// A limit with a zero interval or a zero burst is off and passes everything.
#pragma once

#include <chrono>
#include <optional>

#include "policy/time_point.h"

namespace usherd::policy {

/// A fixed-window event counter.
class RateLimit {
 public:
  /// An unconfigured limit: everything passes.
  RateLimit() = default;
  /// At most burst events per interval.
  RateLimit(std::chrono::microseconds interval, unsigned burst);

  /// True when both interval and burst are non-zero.
  bool is_configured() const;
  /// Counts an event at now; true when it is within the burst of the current window.
  bool try_take(TimePoint now);
  /// Changes interval and burst; the current window is kept only if neither changed.
  void reconfigure(std::chrono::microseconds interval, unsigned burst);

  /// The interval.
  std::chrono::microseconds interval() const { return interval_; }
  /// The burst.
  unsigned burst() const { return burst_; }

 private:
  std::chrono::microseconds interval_{0};
  unsigned burst_ = 0;
  std::optional<TimePoint> window_begin_;
  unsigned count_ = 0;
};

}  // namespace usherd::policy

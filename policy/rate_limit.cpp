// Fixed-window counting for RateLimit.
#include "policy/rate_limit.h"

#include <limits>

namespace usherd::policy {

RateLimit::RateLimit(std::chrono::microseconds interval, unsigned burst)
    : interval_(interval), burst_(burst) {}

bool RateLimit::is_configured() const {
  return interval_.count() > 0 && burst_ > 0;
}

bool RateLimit::try_take(TimePoint now) {
  if (!is_configured()) return true;
  if (!window_begin_ || now - *window_begin_ > interval_) {
    window_begin_ = now;
    count_ = 1;
    return true;
  }
  if (count_ < std::numeric_limits<unsigned>::max()) ++count_;
  return count_ <= burst_;
}

void RateLimit::reconfigure(std::chrono::microseconds interval, unsigned burst) {
  if (interval == interval_ && burst == burst_) return;
  interval_ = interval;
  burst_ = burst;
  window_begin_.reset();
  count_ = 0;
}

}  // namespace usherd::policy

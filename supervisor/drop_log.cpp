#include "supervisor/drop_log.h"

#include <spdlog/spdlog.h>

namespace usherd::supervisor {

void DropLog::drop(Clock::time_point now, const std::string& line, const std::string& socket) {
  flush(now, socket);
  if (logged_ == 0 && suppressed_ == 0) window_start_ = now;
  if (logged_ < burst_) {
    ++logged_;
    spdlog::warn("{}", line);
  } else {
    ++suppressed_;
  }
}

void DropLog::flush(Clock::time_point now, const std::string& socket) {
  if (logged_ == 0 && suppressed_ == 0) return;
  if (now - window_start_ < window_) return;
  if (suppressed_ > 0) {
    spdlog::warn("drop socket={} logging rate-limited: {} more connections dropped", socket,
                 suppressed_);
  }
  logged_ = 0;
  suppressed_ = 0;
}

}  // namespace usherd::supervisor

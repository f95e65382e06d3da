#include "supervisor/drop_log.h"

#include <spdlog/spdlog.h>

namespace usherd::supervisor {

void DropLog::log_line(const std::string& line) {
  spdlog::warn("{}", line);
}

bool DropLog::allow(Clock::time_point now, const std::string& socket) {
  flush(now, socket);
  if (logged_ == 0 && suppressed_ == 0) window_start_ = now;
  if (logged_ < burst_) {
    ++logged_;
    return true;
  }
  ++suppressed_;
  return false;
}

void DropLog::flush(Clock::time_point now, const std::string& socket) {
  if (logged_ == 0 && suppressed_ == 0) return;
  if (now - window_start_ < window_) return;
  finish(socket);
}

void DropLog::finish(const std::string& socket) {
  if (suppressed_ > 0) {
    spdlog::warn("{} socket={} logging rate-limited: {} more {}",
                 what_ == "connections dropped" ? "drop" : "output", socket, suppressed_, what_);
  }
  logged_ = 0;
  suppressed_ = 0;
}

}  // namespace usherd::supervisor

// Rate-limited logging of dropped connections, one logger per socket.
//
// A flood must not turn into a log flood (OpenSSH rate-limits its "drop connection" lines
// for the same reason): the first few drops of a window are logged in full, in one shape that
// people and fail2ban can match; the rest are counted and reported as one summary line,
// "... logging rate-limited: 812 more connections dropped", when the window closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace usherd::supervisor {

class DropLog {
 public:
  using Clock = std::chrono::steady_clock;

  /// Lines logged in full per window, and the window length.
  explicit DropLog(unsigned burst = 5, Clock::duration window = std::chrono::seconds(10))
      : burst_(burst), window_(window) {}

  /// Logs or counts one drop. line is the full record.
  void drop(Clock::time_point now, const std::string& line, const std::string& socket);
  /// Emits the summary of a window that has closed; called from a periodic timer.
  void flush(Clock::time_point now, const std::string& socket);

 private:
  unsigned burst_;
  Clock::duration window_;
  Clock::time_point window_start_{};
  unsigned logged_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace usherd::supervisor

// Rate-limited logging of dropped connections (and of instances' output records), one
// logger per socket and kind.
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

  /// Lines logged in full per window, the window length, and what the summary counts
  /// ("connections dropped", "output records suppressed").
  explicit DropLog(unsigned burst = 5, Clock::duration window = std::chrono::seconds(10),
                   std::string what = "connections dropped")
      : burst_(burst), window_(window), what_(std::move(what)) {}

  /// Counts one event; true when it may be logged in full, false when it is only counted.
  bool allow(Clock::time_point now, const std::string& socket);
  /// Logs (as a warning) or counts one drop; line is the full record.
  void drop(Clock::time_point now, const std::string& line, const std::string& socket) {
    if (allow(now, socket)) log_line(line);
  }
  /// Emits the summary of a window that has closed; called from a periodic timer.
  void flush(Clock::time_point now, const std::string& socket);
  /// Emits the summary of the current window at once (its source is going away).
  void finish(const std::string& socket);

 private:
  static void log_line(const std::string& line);
  unsigned burst_;
  Clock::duration window_;
  std::string what_;
  Clock::time_point window_start_{};
  unsigned logged_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace usherd::supervisor

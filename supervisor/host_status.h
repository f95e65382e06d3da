// What usherd tells its host about itself: the process title ("usherd: 3 of 10:30:100
// startups, 12 instances", what `ps` shows), and, under systemd, sd_notify's READY=1,
// RELOADING=1, STOPPING=1, STATUS= and the watchdog. Also whether usherd is stopping, which
// every component asks before starting anything.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace usherd::supervisor {

class HostStatus {
 public:
  using Clock = std::chrono::steady_clock;
  /// The title is written at most this often (a reader of ps needs no fresher figures); the
  /// last change is always shown within it.
  static constexpr auto kTitleInterval = std::chrono::milliseconds(100);

  /// title: the figures of the moment ("3 of 10:30:100 startups, 12 instances").
  HostStatus(boost::asio::io_context& io, std::function<std::string()> title);

  /// Reads NOTIFY_SOCKET= and WATCHDOG_USEC= from usherd's environment.
  void detect_service_manager();
  bool under_systemd() const { return under_systemd_; }

  /// The figures may have changed: the title follows within kTitleInterval.
  void changed();
  /// Every second: STATUS= and the watchdog's ping, under systemd.
  void tick();
  void ready();
  void reloading();
  /// usherd is stopping: said to systemd, and stopping() is true from now on.
  void stop();
  bool stopping() const { return stopping_; }

  Clock::time_point started_at() const { return started_at_; }
  std::uint64_t reloads() const { return reloads_; }
  void count_reload() { ++reloads_; }

 private:
  void notify(const char* state) const;

  boost::asio::io_context& io_;
  std::function<std::string()> title_;
  Clock::time_point started_at_ = Clock::now();
  bool under_systemd_ = false;
  bool watchdog_ = false;
  bool stopping_ = false;
  std::uint64_t reloads_ = 0;
  std::string last_title_;
  std::string last_status_;
  Clock::time_point title_written_at_{};
  std::unique_ptr<boost::asio::steady_timer> title_timer_;
  bool title_timer_armed_ = false;
};

}  // namespace usherd::supervisor

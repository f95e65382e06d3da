#include "supervisor/host_status.h"

#include <cstdlib>

#include <systemd/sd-daemon.h>

#include "supervisor/proc_title.h"

namespace usherd::supervisor {

HostStatus::HostStatus(boost::asio::io_context& io, std::function<std::string()> title)
    : io_(io), title_(std::move(title)) {}

void HostStatus::detect_service_manager() {
  under_systemd_ = std::getenv("NOTIFY_SOCKET") != nullptr;
  watchdog_ = under_systemd_ && std::getenv("WATCHDOG_USEC") != nullptr;
}

void HostStatus::notify(const char* state) const {
  if (under_systemd_) sd_notify(0, state);
}

void HostStatus::changed() {
  if (title_timer_armed_) return;
  Clock::time_point now = Clock::now();
  if (now - title_written_at_ < kTitleInterval) {
    if (!title_timer_) title_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    title_timer_armed_ = true;
    title_timer_->expires_at(title_written_at_ + kTitleInterval);
    title_timer_->async_wait([this](const boost::system::error_code& ec) {
      title_timer_armed_ = false;
      if (!ec) changed();
    });
    return;
  }
  title_written_at_ = now;
  std::string text = "usherd: " + title_();
  if (text == last_title_) return;
  last_title_ = text;
  ProcTitle::set(text);
}

void HostStatus::tick() {
  changed();
  if (!under_systemd_) return;
  std::string status = "STATUS=" + title_();
  if (status != last_status_) {
    last_status_ = status;
    sd_notify(0, status.c_str());
  }
  if (watchdog_) sd_notify(0, "WATCHDOG=1");
}

void HostStatus::ready() {
  notify("READY=1");
}

void HostStatus::reloading() {
  notify("RELOADING=1");
}

void HostStatus::stop() {
  if (stopping_) return;
  stopping_ = true;
  notify("STOPPING=1");
}

}  // namespace usherd::supervisor

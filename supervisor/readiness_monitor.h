// How instances say they are ready, and what they say besides: the notify socket
// (sd_notify: READY=1, STOPPING=1, STATUS=), each instance's output capture (forwarded to the
// log, and matched by X-ReadyLog=), and the startup deadline that stops an instance which
// never becomes ready.
//
// Readiness must be unforgeable (DESIGN.md "Readiness"): a datagram counts only when the
// kernel names its sender (SCM_CREDENTIALS, and SCM_PIDFD where the kernel has it) as the
// instance's main process or, with NotifyAccess=all, a descendant of it; a ready-log record
// counts only when it *begins* with a match, because sshd -e copies attacker-chosen bytes
// (CR/LF included) into the middle of its records. Neither socket accepts descriptors
// (activation::FdCloser).
#pragma once

#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "activation/fd_closer.h"
#include "supervisor/drop_log.h"
#include "supervisor/instance_table.h"

namespace usherd::supervisor {

class ReadinessMonitor {
 public:
  ReadinessMonitor(asio::io_context& io, InstanceTable& instances);

  /// Binds the notify socket at path (NOTIFY_SOCKET= of the units that may notify).
  void start(const std::string& path);
  /// Forwards the instance's captured output to the log (and to its X-ReadyLog= matcher).
  void watch_output(Instance& instance);
  /// Stops the instance as its unit says if it is still starting after timeout.
  void arm_startup_timeout(Instance& instance, Clock::duration timeout);
  /// The instance is ready (via "notify", "log", "exec", "unknown"): running, recorded,
  /// logged, and its owner told.
  void mark_ready(Instance& instance, const char* via, Clock::time_point now);
  /// An adopted instance still starting: its deadline goes on from its start, or, when its
  /// readiness channel was lost in the restart, its startup ends as unknown.
  void resume_startup(Instance& instance, units::Duration timeout, Clock::time_point now);
  /// An adopted instance whose X-ReadyLog= capture did not survive usherd's restart: its
  /// startup ends as unknown (counted), not by a timeout.
  void readiness_lost(Instance& instance, Clock::time_point now);
  /// Reads what a starting instance may still have queued (before its exit is reaped).
  void drain(Instance& instance);
  /// Reads the rest of an ended instance's output.
  void drain_output(Instance& instance);
  /// Housekeeping: summaries of the output rate limits whose windows have closed.
  void flush_logs(Clock::time_point now);

  std::uint64_t notify_rejected() const { return notify_rejected_; }
  std::uint64_t startup_timeouts() const { return startup_timeouts_; }
  std::uint64_t startups_unknown() const { return startups_unknown_; }

 private:
  void arm_notify();
  void on_notification();
  void on_output(Instance& instance);
  void arm_stop_timeout(Instance& instance);
  Instance* attribute_sender(pid_t sender, std::uint64_t sender_inode);

  asio::io_context& io_;
  InstanceTable& instances_;
  std::unique_ptr<asio::posix::stream_descriptor> notify_;
  /// Closes descriptors a notify sender or an instance's output attached, off the loop.
  activation::FdCloser fd_closer_;
  /// Instances' captured output, per socket: generous, but a chatty or hostile instance
  /// cannot flood the log.
  std::map<std::string, DropLog> output_logs_;
  std::uint64_t notify_rejected_ = 0;
  std::uint64_t startup_timeouts_ = 0;
  std::uint64_t startups_unknown_ = 0;
};

}  // namespace usherd::supervisor

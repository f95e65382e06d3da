// The per-connection path (Accept=yes): accept, admit, name, plan, launch, and what follows
// each instance's readiness and end. It owns the admission engine (the global startup
// budget, per-source limits and penalties) and the launcher, so every decision about a
// connection and every count behind it lives here.
//
// A listener is drained with accept4(SOCK_CLOEXEC), up to a bounded batch per wake-up so
// that one busy socket cannot starve the others. An admitted connection's process is
// launched without waiting for its execve (activation::Launcher: the loop is never
// suspended by a child) and tracked at once; the batch's state-file lines and accept log
// lines go out once the listener is drained. While kMaxStarting launched children have not
// reached their execve, the listeners are held and the kernel's accept queue keeps the rest.
// Only children still making progress hold every socket: one that has not exec'd after
// kStallAfter (SIGSTOPped by a process of its own user, a hung WorkingDirectory= or binary)
// holds only its own socket, and is killed at kExecDeadline.
//
// The waiting room (WaitingRoom=, policy/waiting_room.h): a connection the startup budget has
// no room for is parked, accepted with nothing spawned and nothing sent, and started when the
// policy gives it a slot (served whenever a slot may have freed: an instance became ready or
// ended, a spawn failed, the configuration changed). A parked client that hangs up is seen at
// once through its own epoll set (EPOLLRDHUP, edge-triggered: an SSH banner the client sends
// while it waits stays in the socket for sshd), and its ticket cancelled. While connections
// wait, startups whose clients have stalled (policy/stall.h: ReclaimStalledSec=,
// ReclaimStalledBytes=) are ended, oldest first, so that a flood of connections that say
// nothing cannot hold every slot until StartupTimeoutSec=; looked for when a connection is
// parked and at every housekeeping tick.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "activation/accept.h"
#include "activation/spawn.h"
#include "policy/admission.h"
#include "policy/sshd_log.h"
#include "supervisor/histogram.h"
#include "supervisor/instance_table.h"
#include "supervisor/listener_set.h"
#include "supervisor/readiness_monitor.h"

namespace usherd::supervisor {

class HostStatus;

class ConnectionPath : public InstanceOwner {
 public:
  /// Connections stay in the kernel's accept queue while this many launched children have
  /// not reached their execve: a burst of thousands is launched at the pace the cores exec
  /// them, instead of all at once. Few, because every starting child is one more runnable
  /// task the loop shares the cores with: measured under a c=64 churn flood on 2 cores, a
  /// status request took 18 ms (p50, 65 ms max) with 32, 0.5 ms (4.7 ms max) with 8, for the
  /// same conn/s.
  static constexpr std::size_t kMaxStarting = 8;
  /// A child that has not reached its execve this long after its launch is not making
  /// progress: it stops counting against every socket and holds only its own.
  static constexpr auto kStallAfter = std::chrono::milliseconds(250);
  /// ... and is killed this long after its launch, counted as a failed spawn.
  static constexpr auto kExecDeadline = std::chrono::seconds(5);
  /// At most this many stalled startups are reclaimed at once (the rest at the next look).
  static constexpr std::size_t kMaxReclaimsPerPass = 16;

  ConnectionPath(asio::io_context& io, InstanceTable& instances, ReadinessMonitor& readiness,
                 ListenerSet& listeners, HostStatus& host, PlanContext plan_context, int dev_null);

  /// usherd.conf's admission settings and default startup timeout.
  void configure(const units::DaemonConfig& config);
  policy::AdmissionEngine& admission() { return *admission_; }
  /// usherd.conf's StartupTimeoutSec=, for sockets that do not set their own.
  units::Duration default_startup_timeout() const { return default_startup_timeout_; }
  const policy::AdmissionEngine& admission() const { return *admission_; }
  /// "3/10:30:100", for log lines.
  std::string startups_text() const;

  /// Accepts what is waiting on an Accept=yes stream listener (a bounded batch).
  void drain(Listener& listener);
  /// Whether socket's listeners must wait: kMaxStarting children before their execve,
  /// counting every socket's launched within kStallAfter and this socket's own however old.
  bool must_hold(const Socket& socket, Clock::time_point now);
  /// Launched children past kStallAfter and still before their execve, all sockets.
  std::size_t stalled_launches() const;
  /// A connection instance found running after usherd's restart.
  void adopt(Instance& instance, Socket& socket, Clock::time_point now);
  /// Shutdown: parked connections closed, and instances still starting (unauthenticated) are
  /// stopped, as are those that said STOPPING=1. Running ones (an ssh session) are left alone.
  void shutdown();
  /// Housekeeping: children past kExecDeadline killed, stalled startups reclaimed.
  void housekeeping(Clock::time_point now);
  /// A slot may have freed (or the configuration changed): the waiting room is served once
  /// the handlers already ready have run.
  void queue_room();

  const Histogram& room_wait_seconds() const { return room_wait_seconds_; }

  std::uint64_t spawn_failures() const { return spawn_failures_; }
  /// Startups ended as stalled while connections waited.
  std::uint64_t startups_reclaimed() const { return startups_reclaimed_; }
  const Histogram& spawn_seconds() const { return spawn_seconds_; }
  const Histogram* startup_seconds(const std::string& socket) const;

  void instance_ready(Instance& instance, const char* via, Clock::time_point now) override;
  void instance_ready_again(Instance&) override {}
  void instance_ended(Instance& instance, const EndStatus& status, Clock::time_point now) override;

 private:
  void handle(Socket& socket, activation::Accepted&& conn, Clock::time_point now);
  /// Starts the instance of an admitted (or unparked) connection.
  void start(Socket& socket, activation::Accepted&& conn, policy::InstanceId admission,
             Clock::time_point now);
  void drop(Socket& socket, const activation::Accepted& conn, const policy::Decision& decision,
            const policy::IpAddress& peer, Clock::time_point now);
  void park(Socket& socket, activation::Accepted&& conn, policy::TicketId ticket);
  /// A parked connection leaves the room: started, or dropped with the policy's reason.
  void leave_room(const policy::RoomExit& exit, Clock::time_point now);
  void serve_room(Clock::time_point now);
  void arm_room_timer();
  /// While connections wait: ends stalled startups (policy/stall.h), at most one per waiter.
  void reclaim_stalled(Clock::time_point now);
  void watch_parked();
  void on_parked_events();
  void launch(Socket& socket, std::unique_ptr<Instance> instance, activation::SpawnPlan&& spawn,
              UniqueFd output, Clock::time_point accepted_at);
  void finish_launches();
  void spawn_failed(const std::string& socket, const std::string& name, const std::string& peer,
                    std::optional<policy::InstanceId> admission, const Error& error,
                    Clock::time_point now, bool launch_failed = false);
  Clock::duration startup_timeout(const Socket& socket) const;
  /// For a service that runs sshd: the drop, also in sshd's own words (sshd_log.h).
  void log_sshd_drop(const activation::Accepted& conn, const policy::Decision& decision,
                     const policy::IpAddress& peer, Clock::time_point now);
  /// For a service that runs sshd: the penalty an end earned, in sshd's own words.
  void log_sshd_penalty(const Instance& instance, const policy::Released& released);

  asio::io_context& io_;
  InstanceTable& instances_;
  ReadinessMonitor& readiness_;
  ListenerSet& listeners_;
  HostStatus& host_;
  PlanContext plan_context_;
  int dev_null_;
  std::unique_ptr<policy::AdmissionEngine> admission_;
  std::string max_startups_text_;  ///< the policy's MaxStartups as configured ("10:30:100")
  units::Duration default_startup_timeout_{};
  std::mt19937_64 rng_;
  /// Starts connections' instances without waiting for their execve (activation/spawn.h).
  /// mutable: counting its children also tidies the slots of those that have exec'd, which
  /// changes nothing a reader of the status sees.
  mutable activation::Launcher launcher_;
  /// Instances launched while draining a listener: their state-file lines are written, and
  /// their accept lines logged, once it is drained.
  std::vector<std::uint64_t> launched_;
  std::uint64_t spawn_failures_ = 0;
  std::uint64_t startups_reclaimed_ = 0;
  /// sshd's own rate limits of its drop lines, for the lines usherd writes in its words.
  policy::SshdLogRateLimit sshd_startups_log_ = policy::SshdLogRateLimit::for_max_startups();
  policy::SshdLogRateLimit sshd_penalty_log_ = policy::SshdLogRateLimit::for_penalties();
  std::uint64_t sshd_drops_ = 0;  ///< numbers the drop lines, as sshd's #N does
  Histogram spawn_seconds_;
  std::map<std::string, Histogram> startup_seconds_;  ///< per socket

  /// A connection in the waiting room: its fd (in parked_watch_), and its socket by name (a
  /// reload may replace the Socket while it waits).
  struct Parked {
    activation::Accepted conn;
    std::string socket;
  };
  std::map<std::uint64_t, Parked> parked_;  ///< by ticket
  /// The epoll set of parked connections (one fd, made with the path), in the loop.
  std::unique_ptr<asio::posix::stream_descriptor> parked_watch_;
  asio::steady_timer room_timer_;
  bool room_queued_ = false;
  Histogram room_wait_seconds_;
};

}  // namespace usherd::supervisor

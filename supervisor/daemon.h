// The daemon: one thread, one io_context, all state owned here.
//
// It joins the three layers below: the configuration (units/), the mechanisms
// (activation/) and the admission policy (policy/). Per connection (Accept=yes) the path is
// accept4 -> policy.admit -> spawn -> instance STARTING -> ready / exit / timeout; Accept=no
// services get the listening sockets themselves. Member functions are split across files by
// job: daemon.cpp (lifecycle, load, reload, signals), daemon_accept.cpp (listeners and the
// per-connection path), daemon_instances.cpp (tracking, readiness, timeouts, ends),
// daemon_services.cpp (Accept=no services), daemon_status.cpp (status, metrics, control).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include "activation/accept.h"
#include "activation/fd_closer.h"
#include "activation/listener.h"
#include "activation/process.h"
#include "activation/ready_log.h"
#include "activation/socket_address.h"
#include "activation/spawn.h"
#include "base/unique_fd.h"
#include "policy/admission.h"
#include "supervisor/drop_log.h"
#include "supervisor/histogram.h"
#include "supervisor/http_metrics.h"
#include "supervisor/spawn_plan.h"
#include "supervisor/state_file.h"
#include "supervisor/status_snapshot.h"
#include "units/loader.h"

namespace usherd::supervisor {

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

struct Options {
  std::vector<std::string> unit_dirs;
  std::optional<std::string> config_file;
  std::string runtime_dir = "/run/usherd";
};

struct SocketState;

/// One listening fd of a socket unit.
struct ListenerState {
  SocketState* owner = nullptr;
  std::string key;    ///< address and options: equal keys keep the fd across reloads
  std::string bound;  ///< the address actually bound ("127.0.0.1:41234")
  int type = 0;       ///< SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  std::unique_ptr<asio::posix::stream_descriptor> fd;
  /// Every accepted connection's local address when it is bound to one IP address; empty for
  /// a wildcard or AF_UNIX (activation::fixed_local_address).
  activation::SocketAddress fixed_local;
  bool waiting = false;
  bool paused = false;
  /// Not armed: kMaxStarting children launched in the last kStallAfter (every socket), or
  /// of this socket's own stalled ones, have not reached execve.
  bool held = false;
  /// An EMFILE/ENFILE/ENOMEM/ENOBUFS episode: since when, and how many pauses so far (logged
  /// once when it starts and once when accepting works again).
  std::optional<Clock::time_point> exhausted_since;
  unsigned exhausted_pauses = 0;
  std::unique_ptr<asio::steady_timer> pause_timer;
};

/// A long-lived (Accept=no) service started by its socket.
struct ServiceRun {
  enum class Phase { idle, pre, main, post, running, stopping, restart_wait } phase = Phase::idle;
  std::uint64_t instance_key = 0;  ///< the main process's Instance, when there is one
  std::size_t step = 0;            ///< index into pre/post, or into main_commands (oneshot)
  unsigned restarts = 0;           ///< consecutive failures, for back-off
  std::vector<activation::SpawnPlan> reload_queue;  ///< ExecReload= commands still to run
  std::vector<activation::SpawnPlan> stop_queue;    ///< ExecStop= commands still to run
  std::uint64_t helper_key = 0;  ///< the ExecReload=/ExecStop= command running now
  /// The main process held usherd's listening sockets when it became ready: a later check
  /// that finds none of them means it dropped them (see check_listeners_held).
  bool held_listeners = false;
  bool start_failed = false;  ///< being stopped because ExecStartPost= failed
  /// Being stopped because it let the sockets go: it may be re-executing itself, and a signal
  /// the old image catches is lost with it, so the stop signal goes again (kill_service_main).
  bool let_go = false;
  std::unique_ptr<asio::steady_timer> timer;
  std::unique_ptr<asio::steady_timer> resignal_timer;
};

struct SocketState {
  units::SocketUnit unit;
  policy::SocketId policy_id{};
  /// The Launcher's group tag of this socket's launches (a hash of its name, so it survives
  /// a reload).
  std::uint64_t launch_group = 0;
  std::vector<std::unique_ptr<ListenerState>> listeners;
  std::shared_ptr<ServicePlan> service;
  std::uint64_t accept_counter = 0;
  DropLog drop_log;
  /// Instances' captured output: generous, but a chatty or hostile instance cannot flood.
  DropLog output_log{200, std::chrono::seconds(10), "output records suppressed"};
  ServiceRun run;  ///< Accept=no only
  bool removed = false;
};

/// One process usherd started and tracks: a per-connection instance or the main process of
/// an Accept=no service (or one of its ExecStartPre=/Post= commands).
struct Instance {
  enum class State { starting, running, stopping };
  enum class Role { connection, service_main, service_helper };
  std::uint64_t key = 0;
  std::string name;
  std::string socket;  ///< socket unit name
  Role role = Role::connection;
  pid_t pid = 0;
  std::uint64_t pidfd_inode = 0;  ///< identity for re-adoption (see StateEntry)
  std::uint64_t start_time = 0;   ///< /proc/PID/stat field 22, where pidfd_inode is 0
  UniqueFd pidfd;                 ///< in exit_watch_ while the instance is tracked
  std::unique_ptr<asio::posix::stream_descriptor> output;  ///< journal/ready-log capture
  std::string peer;
  std::string remote_ip;
  std::optional<policy::InstanceId> admission;
  State state = State::starting;
  const char* ready_via = nullptr;  ///< "notify", "log", "exec", or null
  Clock::time_point started{};
  std::chrono::system_clock::time_point started_wall{};
  std::unique_ptr<asio::steady_timer> timer;
  std::shared_ptr<ServicePlan> plan;
  bool adopted = false;       ///< re-adopted after a restart: not our child, status unknown
  bool persisted = false;     ///< its '+' line is in the state file
  bool timed_out = false;     ///< stopped by the startup timeout
  bool watched_exit = false;  ///< its pidfd is in the exit watch
  /// It said STOPPING=1 itself (usherd did not ask it to stop): TimeoutStopSec= runs, and
  /// usherd's shutdown stops it like one still starting.
  bool stopping_by_itself = false;
  /// Killed for missing the pre-exec deadline (kExecDeadline): counted as a failed spawn.
  bool exec_overdue = false;
  /// STATUS= lines, logged at a bounded rate per instance; made on the first one.
  std::unique_ptr<DropLog> status_log;
};

/// Accept or spawn failed for want of fds or memory: retrying at once would fail the same way.
inline bool is_fd_exhaustion(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS;
}

/// A process being started: what the loop needs to track it as an instance.
struct PendingSpawn {
  std::shared_ptr<ServicePlan> plan;
  std::string socket;  ///< socket unit name (the SocketState may be replaced by a reload)
  std::string name;
  std::string peer;
  std::string remote_ip;
  std::optional<policy::InstanceId> admission;
  Clock::time_point accepted_at{};
  UniqueFd output;  ///< usherd's end of the output capture, if any
  Clock::time_point spawned_at{};
  std::uint64_t pidfd_inode = 0;
  std::uint64_t start_time = 0;
};

class Daemon {
 public:
  explicit Daemon(Options options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Loads the configuration, opens listeners, and runs until SIGTERM/SIGINT. Returns the
  /// process exit code.
  int run();

  // --- used by the control server (daemon_status.cpp) ---
  /// What operators see now, from every component (rendered by status_snapshot.h).
  StatusSnapshot snapshot(Clock::time_point now) const;
  /// Reloads; returns a report (what changed or why it was refused) and success.
  std::pair<bool, std::string> reload();
  /// Stops one instance by name; false when there is none.
  bool stop_instance(const std::string& name);

 private:
  // daemon.cpp
  bool load(bool initial, std::string& report);
  void apply_daemon_config(const units::DaemonConfig& config);
  PlanContext plan_context() const;
  void start_signals();
  void arm_signals();
  void on_signal(int signo);
  void begin_shutdown();
  void maybe_finish_shutdown();
  std::string title() const;
  void housekeeping();
  void update_title();
  void sd_notify_status();
  void adopt_from_state_file();
  void persist(Instance& instance, StateFile::Event event);
  static StateEntryView state_view(const Instance& instance);
  static StateEntry state_entry(const Instance& instance);

  // daemon_accept.cpp
  void open_listeners(SocketState& socket,
                      std::map<std::string, std::unique_ptr<ListenerState>>& reuse);
  void arm_listener(ListenerState& listener);
  void on_listener_readable(ListenerState& listener);
  void handle_connection(SocketState& socket, activation::Accepted&& conn, Clock::time_point now);
  void pause_listener(ListenerState& listener, int error);
  void hold_listener(ListenerState& listener);
  void arm_held_timer();
  void release_held_listeners();
  /// Whether socket's listeners must wait: kMaxStarting children before their execve,
  /// counting every socket's launched within kStallAfter (still making progress) and this
  /// socket's own however old.
  bool must_hold(const SocketState& socket, Clock::time_point now);
  /// Kills children that have not reached execve kExecDeadline after their launch.
  void enforce_exec_deadline(Clock::time_point now);
  /// Launched children past kStallAfter and still before their execve, all sockets.
  std::size_t stalled_launches() const;
  void resume_exhausted_listeners();
  std::string startups_text() const;

  // daemon_instances.cpp
  Instance* spawn_instance(SocketState& socket, ServicePlan& plan, activation::SpawnPlan&& spawn,
                           Instance::Role role, std::string name, std::string peer,
                           std::string remote_ip, std::optional<policy::InstanceId> admission,
                           Clock::time_point accepted_at, UniqueFd output);
  void prepare_runtime_directories(const ServicePlan& plan, const std::string& name);
  void launch_connection(PendingSpawn&& pending, activation::SpawnPlan&& spawn,
                         std::uint64_t launch_group);
  void finish_launches();
  /// Clones the launcher's next spare child once the ready handlers have run.
  void refill_spare();
  void spawn_failed(const std::string& socket, const std::string& name, const std::string& peer,
                    std::optional<policy::InstanceId> admission, const Error& error,
                    Clock::time_point now, bool launch_failed = false);
  Instance& track_instance(const std::string& socket, std::shared_ptr<ServicePlan> plan,
                           Instance::Role role, PendingSpawn&& spawned, pid_t pid, UniqueFd pidfd);
  void reap_orphans();
  static void identify(PendingSpawn& spawned, pid_t pid, int pidfd);
  void watch_exit(Instance& instance);
  /// Waits for the exit watch's next report.
  void wait_for_exits();
  /// Instances whose pidfd exit_watch_ could not take (ENOMEM): looked at by housekeeping.
  void poll_unwatched_exits();
  void watch_output(Instance& instance);
  void on_output(Instance& instance);
  void on_exit(std::uint64_t key);
  void mark_ready(Instance& instance, const char* via, Clock::time_point now);
  /// Arms the instance's one timer: on_expiry runs after `after` if the instance still
  /// exists then.
  void arm_instance_timer(Instance& instance, Clock::duration after,
                          std::function<void(Instance&)> on_expiry);
  void arm_startup_timeout(Instance& instance, Clock::duration timeout);
  /// STOPPING=1 from a ready instance: TimeoutStopSec= from now, then KillSignal=.
  void arm_stop_timeout(Instance& instance);
  /// The instance's TimeoutStopSec= (90 s without a plan).
  static units::Duration timeout_stop_of(const Instance& instance);
  /// Stops the instance as its unit says: KillSignal=, then SIGKILL after TimeoutStopSec=.
  void stop_as_unit_says(Instance& instance);
  /// Signals the instance (unless signalled: it has been, by its group) and SIGCONT, and
  /// sends SIGKILL after escalate_after.
  void stop(Instance& instance, int signal, Clock::duration escalate_after, bool signalled = false);
  void start_notify_socket();
  void arm_notify();
  void on_notification();
  Instance* find_by_pid(pid_t pid);
  /// The instance a notification from sender counts for (sender_inode: the sender's pidfd
  /// identity from SCM_PIDFD, 0 when unknown), or nullptr.
  Instance* attribute_sender(pid_t sender, std::uint64_t sender_inode);

  // daemon_services.cpp (Accept=no)
  void start_service(SocketState& socket);
  void service_step(SocketState& socket);
  void start_main_process(SocketState& socket);
  void service_exited(SocketState& socket, const Instance& instance, bool success, bool by_signal,
                      int code);
  void service_ended(SocketState& socket, bool success, bool by_signal, int code);
  void reload_service(SocketState& socket);
  void run_next_reload_command(SocketState& socket);
  void stop_service(SocketState& socket);
  void run_next_stop_command(SocketState& socket);
  void kill_service_main(SocketState& socket);
  /// KillMode=control-group: signals the service's process group; true if the main process
  /// was in it (and so has the signal).
  static bool signal_service_group(const Instance& main, int signal);
  bool spawn_service_command(SocketState& socket, activation::SpawnPlan spawn, const char* what);
  void service_ready_again(Instance& main);
  bool main_holds_listeners(const SocketState& socket) const;
  void check_listeners_held(SocketState& socket, const char* when);

  // daemon_status.cpp
  void start_control();
  void arm_control();
  void read_control(std::shared_ptr<void> connection);
  std::string answer_control(std::string_view body);
  void start_metrics_listener();

  SocketState* find_socket(const std::string& name);

  Options options_;
  asio::io_context io_;
  std::unique_ptr<asio::posix::stream_descriptor> signal_fd_;  ///< signalfd of TERM, INT, HUP, USR1
  asio::steady_timer housekeeping_timer_;
  std::mt19937_64 rng_;
  units::DaemonConfig daemon_config_;
  std::unique_ptr<policy::AdmissionEngine> admission_;
  std::vector<std::unique_ptr<SocketState>> sockets_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Instance>> instances_;
  /// Every tracked instance's pidfd, reporting its end (activation::ExitWatch); its fd is
  /// exit_watch_io_ in the loop.
  std::optional<activation::ExitWatch> exit_watch_;
  std::unique_ptr<asio::posix::stream_descriptor> exit_watch_io_;
  std::vector<std::uint64_t> exit_keys_;
  std::vector<std::uint64_t> unwatched_exits_;
  std::unordered_map<pid_t, std::uint64_t> by_pid_;
  std::uint64_t next_instance_key_ = 1;
  std::unique_ptr<asio::posix::stream_descriptor> notify_;
  std::unique_ptr<asio::posix::stream_descriptor> control_;
  std::unique_ptr<HttpMetrics> metrics_;
  std::string metrics_bound_;
  UniqueFd dev_null_;
  /// Closes descriptors a notify sender or an instance's output attached, off the loop.
  activation::FdCloser fd_closer_;
  StateFile state_file_;
  bool stopping_ = false;
  bool under_systemd_ = false;
  bool watchdog_ = false;
  std::string last_title_;
  std::string max_startups_text_;  ///< the policy's MaxStartups as configured ("10:30:100")
  static constexpr auto kTitleInterval = std::chrono::milliseconds(100);
  Clock::time_point title_written_at_{};
  std::unique_ptr<asio::steady_timer> title_timer_;
  bool title_timer_armed_ = false;
  std::string last_status_;
  Clock::time_point started_at_;

  // Counters that are not the policy's (which counts admissions and drops).
  std::uint64_t notify_rejected_ = 0;
  std::uint64_t control_answered_ = 0;  ///< control requests answered ok
  std::uint64_t control_refused_ = 0;   ///< answered with an error (bad, slow, not root)
  std::uint64_t startup_timeouts_ = 0;
  /// Adopted instances whose readiness channel did not survive usherd's restart (an
  /// X-ReadyLog= capture): their startup ended as "unknown" instead of by a timeout.
  std::uint64_t startups_unknown_ = 0;
  std::uint64_t spawn_failures_ = 0;
  std::uint64_t reloads_ = 0;
  Histogram spawn_seconds_;
  std::map<std::string, Histogram> startup_seconds_;  ///< per socket

  // Instances launched while draining a listener: their state-file lines are written, and
  // their accept lines logged, once it is drained (daemon_instances.cpp).
  std::vector<std::uint64_t> launched_;
  bool listeners_exhausted_ = false;  ///< some listener is paused for want of fds
  /// Connections stay in the kernel's accept queue while this many launched children have
  /// not reached their execve: a burst of thousands is launched at the pace the cores exec
  /// them, instead of all at once. Few, because every starting child is one more runnable
  /// task the loop shares the cores with: measured under a c=64 churn flood on 2 cores, a
  /// status request took 18 ms (p50, 65 ms max) with 32, 0.5 ms (4.7 ms max) with 8, for the
  /// same conn/s.
  static constexpr std::size_t kMaxStarting = 8;
  /// A child that has not reached its execve this long after its launch is not making
  /// progress (stopped by a process of its own user, or stuck on a file system): it stops
  /// counting against every socket and holds only its own.
  static constexpr auto kStallAfter = std::chrono::milliseconds(250);
  /// ... and is killed this long after its launch, counted as a failed spawn.
  static constexpr auto kExecDeadline = std::chrono::seconds(5);
  std::unique_ptr<asio::steady_timer> held_timer_;
  bool held_timer_armed_ = false;
  /// Starts connections' instances without waiting for their execve (activation/spawn.h).
  /// mutable: counting its children also tidies the slots of those that have exec'd, which
  /// changes nothing a reader of the status sees.
  mutable activation::Launcher launcher_;
  /// A refill of the launcher's spare is queued behind the handlers already ready.
  bool spare_queued_ = false;
  /// A connection has been launched: keep a spare from now on.
  bool spares_wanted_ = false;
};

}  // namespace usherd::supervisor

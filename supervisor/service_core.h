// The life of an Accept=no service, as a state machine with no I/O: events in, actions out.
//
// A socket with Accept=no hands its listening sockets to one long-lived service, started by
// the first connection as systemd's socket activation does. Phases: idle (usherd watches
// the sockets) -> pre (ExecStartPre= one by one) -> main (ExecStart=, until ready: READY=1
// for Type=notify, at exec otherwise; Type=oneshot: each ExecStart= in turn) -> post
// (ExecStartPost=) -> running. When the main process ends, Restart= decides: start again
// after RestartSec= (doubling on consecutive failures up to a cap, never giving up for
// good), or go back to idle so that the next connection starts it again. Reload runs
// ExecReload= one command after another; stop runs ExecStop= (for a service that started),
// then KillSignal=, all within TimeoutStopSec=.
//
// ServiceCore decides; ServiceRunner (service_runner.h) carries the actions out: it spawns
// and signals processes, arms the one timer, and reports what happened back as events. Spawn
// actions are answered at once (spawned() with the result), so the core never waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "units/config.h"

namespace usherd::supervisor {

/// What the core needs to know of a service's unit and plan.
struct ServiceShape {
  std::string socket;                     ///< the socket unit's name, for the log
  std::string service;                    ///< the service unit's name, for the log
  std::vector<bool> pre_ignore_failure;   ///< one per ExecStartPre= ('-' prefix)
  std::vector<bool> post_ignore_failure;  ///< one per ExecStartPost=
  /// Type=oneshot: one per ExecStart=; empty for every other type (one main process).
  std::vector<bool> main_ignore_failure;
  units::RestartPolicy restart = units::RestartPolicy::no;
  units::Duration restart_sec = std::chrono::milliseconds(100);
  std::vector<int> restart_prevent_exit_status;
  std::vector<int> restart_prevent_signals;
  units::Duration timeout_stop = std::chrono::seconds(90);
  bool oneshot() const { return !main_ignore_failure.empty(); }
};

/// How a process of the service ended.
struct ProcessEnd {
  bool success = false;  ///< exited with status 0
  bool by_signal = false;
  int code = 0;  ///< the exit status, or the signal
  std::chrono::steady_clock::duration lifetime{};
};

struct ServiceAction {
  enum class Kind {
    spawn_pre,        ///< ExecStartPre= number `step`; answer with spawned()
    spawn_main,       ///< ExecStart= (number `step` of a oneshot); answer with spawned()
    spawn_post,       ///< ExecStartPost= number `step`; answer with spawned()
    spawn_reload,     ///< ExecReload= number `step`; answer with spawned()
    spawn_stop,       ///< ExecStop= number `step`; answer with spawned()
    kill_main,        ///< KillSignal= to the main process (and its group, as KillMode= says)
    resignal_main,    ///< kill_main, and once more after a second (it may be re-executing)
    arm_timer,        ///< (re)arm the service's one timer for `after`; answer timer_fired()
    cancel_timer,     ///< the timer is not wanted any more
    watch_sockets,    ///< arm the listeners: the next connection activates the service
    probe_listeners,  ///< does the main process hold the sockets? answer listeners_held()
    log_info,         ///< `text` for the log
    log_warning,
    log_error,
  };
  Kind kind;
  std::size_t step = 0;
  std::chrono::steady_clock::duration after{};
  std::string text;
  bool operator==(const ServiceAction&) const = default;
};

using ServiceActions = std::vector<ServiceAction>;

class ServiceCore {
 public:
  enum class Phase { idle, pre, main, post, running, stopping, restart_wait };

  /// Restart back-off cap.
  static constexpr auto kMaxRestartDelay = std::chrono::minutes(5);
  /// A main process that ran this long resets the back-off (systemd's start-limit interval).
  static constexpr auto kStableRun = std::chrono::seconds(10);

  explicit ServiceCore(ServiceShape shape) : shape_(std::move(shape)) {}

  /// A reload changed the unit: what follows uses the new shape; the run goes on.
  void reshape(ServiceShape shape) { shape_ = std::move(shape); }
  const ServiceShape& shape() const { return shape_; }

  /// A connection arrived on an idle service's socket.
  ServiceActions activate();
  /// The answer to a spawn action: whether the process was started.
  ServiceActions spawned(bool started);
  /// The answer to spawn_main with the main process's pid.
  ServiceActions main_spawned(pid_t pid);
  /// The main process became ready (not for a oneshot, which is done when its commands are).
  ServiceActions main_ready();
  /// READY=1 again from a running main process: it reloaded itself.
  ServiceActions main_ready_again();
  ServiceActions main_exited(const ProcessEnd& end);
  /// An ExecStartPre=/Post=/Reload=/Stop= command ended.
  ServiceActions command_exited(const ProcessEnd& end);
  ServiceActions timer_fired();
  /// The configuration was reloaded: run ExecReload= (commands: how many could be expanded).
  ServiceActions reload(std::size_t commands);
  /// (The main process's pid, for the log.)
  pid_t main_pid() const { return main_pid_; }
  /// Stop the service (stop_commands: ExecStop= lines that could be expanded).
  ServiceActions stop(std::size_t stop_commands);
  /// usherd is shutting down: stop, and never start or restart again.
  ServiceActions shutdown(std::size_t stop_commands);
  /// The answer to probe_listeners (stop_commands: as for stop(), should it come to that).
  ServiceActions listeners_held(bool held, std::size_t stop_commands);
  /// A main process found running after usherd's restart (ready or still starting).
  void adopt(bool ready, pid_t pid);

  Phase phase() const { return phase_; }
  const char* phase_name() const;
  bool has_main() const { return has_main_; }
  bool command_running() const { return command_ != Command::none; }
  unsigned restarts() const { return restarts_; }

 private:
  enum class Command { none, pre, post, reload, stop };
  enum class Timer { none, restart, watch_again, stop_deadline };
  enum class Probe { none, record, after_reload, after_ready };

  void step(ServiceActions& out);
  void ended(ServiceActions& out, bool success, bool by_signal, int code);
  void begin_stop(ServiceActions& out, std::size_t stop_commands);
  void next_stop_command(ServiceActions& out);
  void next_reload_command(ServiceActions& out);
  void kill_main(ServiceActions& out);
  bool should_restart(bool success, bool by_signal, int code) const;

  ServiceShape shape_;
  Phase phase_ = Phase::idle;
  std::size_t step_ = 0;  ///< index into pre/post, or into the oneshot's ExecStart= lines
  unsigned restarts_ = 0;
  bool has_main_ = false;
  pid_t main_pid_ = 0;
  Probe probe_ = Probe::none;
  Command command_ = Command::none;  ///< the command running now
  /// What the spawn action waiting for spawned() was.
  ServiceAction::Kind awaiting_ = ServiceAction::Kind::log_info;
  bool awaiting_spawn_ = false;
  std::size_t reload_next_ = 0, reload_count_ = 0;
  std::size_t stop_next_ = 0, stop_count_ = 0;
  Timer timer_ = Timer::none;
  bool held_listeners_ = false;  ///< the main process held the sockets when last looked at
  bool start_failed_ = false;    ///< being stopped because ExecStartPost= failed
  bool let_go_ = false;          ///< being stopped because it let the sockets go
  bool shutting_down_ = false;
};

}  // namespace usherd::supervisor

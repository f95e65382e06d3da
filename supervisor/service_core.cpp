#include "supervisor/service_core.h"

#include <signal.h>

#include <algorithm>

#include <fmt/format.h>

namespace usherd::supervisor {
namespace {

using Kind = ServiceAction::Kind;
using Clock = std::chrono::steady_clock;

ServiceAction act(Kind kind, std::size_t step = 0) {
  return ServiceAction{kind, step, {}, {}};
}
ServiceAction say(Kind level, std::string text) {
  return ServiceAction{level, 0, {}, std::move(text)};
}

// systemd.service(5): besides exit code 0, death by SIGHUP, SIGINT, SIGTERM or SIGPIPE is a
// clean exit (a daemon stopped on purpose), so Restart=on-failure does not restart it.
bool clean_signal(int sig) {
  return sig == SIGHUP || sig == SIGINT || sig == SIGTERM || sig == SIGPIPE;
}

Clock::duration timer_span(units::Duration d) {
  // "infinity" and anything the steady clock cannot hold: its maximum, never reached.
  if (d >= std::chrono::duration_cast<units::Duration>(Clock::duration::max()))
    return Clock::duration::max();
  return std::chrono::duration_cast<Clock::duration>(d);
}

}  // namespace

const char* ServiceCore::phase_name() const {
  static constexpr const char* names[] = {"idle",    "pre",      "main",        "post",
                                          "running", "stopping", "restart-wait"};
  return names[static_cast<int>(phase_)];
}

bool ServiceCore::should_restart(bool success, bool by_signal, int code) const {
  // RestartPreventExitStatus= lists exit codes and signals that never restart.
  for (int c : by_signal ? shape_.restart_prevent_signals : shape_.restart_prevent_exit_status)
    if (c == code) return false;
  switch (shape_.restart) {
    case units::RestartPolicy::no:
      return false;
    case units::RestartPolicy::always:
      return true;
    case units::RestartPolicy::on_success:
      return success;
    case units::RestartPolicy::on_failure:
      return !success;
    case units::RestartPolicy::on_abnormal:
    case units::RestartPolicy::on_abort:
      return by_signal;
    case units::RestartPolicy::on_watchdog:
      return false;
  }
  return false;
}

ServiceActions ServiceCore::activate() {
  ServiceActions out;
  if (shutting_down_ || phase_ != Phase::idle) return out;
  out.push_back(say(Kind::log_info,
                    fmt::format("activate socket={} service={}", shape_.socket, shape_.service)));
  phase_ = Phase::pre;
  step_ = 0;
  step(out);
  return out;
}

void ServiceCore::step(ServiceActions& out) {
  auto spawn = [&](Kind kind, std::size_t index) {
    awaiting_ = kind;
    awaiting_spawn_ = true;
    out.push_back(act(kind, index));
  };
  if (phase_ == Phase::pre) {
    if (step_ < shape_.pre_ignore_failure.size()) {
      command_ = Command::pre;
      spawn(Kind::spawn_pre, step_);
      return;
    }
    phase_ = Phase::main;
    step_ = 0;
    spawn(Kind::spawn_main, 0);
    return;  // main_ready() goes on once the service is ready (a oneshot: its last command)
  }
  if (phase_ == Phase::main) {
    phase_ = Phase::post;
    step_ = 0;
    probe_ = Probe::record;
    out.push_back(act(Kind::probe_listeners));
  }
  if (phase_ == Phase::post) {
    if (step_ < shape_.post_ignore_failure.size()) {
      command_ = Command::post;
      spawn(Kind::spawn_post, step_);
      return;
    }
    if (shape_.oneshot()) {
      // Done once its commands have run; the socket is watched again.
      out.push_back(say(Kind::log_info, fmt::format("finished service={} socket={}", shape_.service,
                                                    shape_.socket)));
      ended(out, true, false, 0);
      return;
    }
    phase_ = Phase::running;
    out.push_back(say(Kind::log_info,
                      fmt::format("started service={} socket={}", shape_.service, shape_.socket)));
  }
}

ServiceActions ServiceCore::spawned(bool started) {
  ServiceActions out;
  if (!awaiting_spawn_) return out;
  awaiting_spawn_ = false;
  switch (awaiting_) {
    case Kind::spawn_pre:
      if (started) break;
      command_ = Command::none;
      if (!shape_.pre_ignore_failure[step_]) {
        ended(out, false, false, 127);
      } else {
        ++step_;
        step(out);
      }
      break;
    case Kind::spawn_post:
      if (started) break;
      command_ = Command::none;
      if (!shape_.post_ignore_failure[step_]) {
        // As if it had failed: the start fails, and the main process is stopped.
        out.push_back(say(Kind::log_error,
                          fmt::format("failed service={} ExecStartPost= could not be started: "
                                      "stopping it",
                                      shape_.service)));
        start_failed_ = true;
        begin_stop(out, 0);
      } else {
        ++step_;
        step(out);
      }
      break;
    case Kind::spawn_main:
      if (!started) ended(out, false, false, 127);
      break;
    case Kind::spawn_reload:
      if (started) {
        command_ = Command::reload;
      } else {
        reload_next_ = reload_count_;  // systemd stops at the first command that fails
      }
      break;
    case Kind::spawn_stop:
      if (started)
        command_ = Command::stop;
      else
        next_stop_command(out);
      break;
    default:
      break;
  }
  return out;
}

ServiceActions ServiceCore::main_spawned(pid_t pid) {
  has_main_ = true;
  main_pid_ = pid;
  return spawned(true);
}

ServiceActions ServiceCore::main_ready() {
  ServiceActions out;
  // A oneshot goes on when its commands exit, whatever they notify.
  if (phase_ != Phase::main || shape_.oneshot()) return out;
  step(out);
  return out;
}

ServiceActions ServiceCore::main_ready_again() {
  ServiceActions out;
  if (phase_ != Phase::running) return out;
  probe_ = Probe::after_ready;
  out.push_back(act(Kind::probe_listeners));
  return out;
}

ServiceActions ServiceCore::command_exited(const ProcessEnd& end) {
  ServiceActions out;
  Command which = command_;
  command_ = Command::none;
  switch (which) {
    case Command::pre:
      if (!end.success && !shape_.pre_ignore_failure[step_]) {
        out.push_back(say(Kind::log_error, fmt::format("failed service={} ExecStartPre= exited "
                                                       "with {}",
                                                       shape_.service, end.code)));
        ended(out, false, end.by_signal, end.code);
        return out;
      }
      ++step_;
      step(out);
      return out;
    case Command::post:
      if (!end.success && !shape_.post_ignore_failure[step_]) {
        // systemd.service(5): a failing ExecStartPre=/ExecStartPost= without "-" fails the
        // start, and the main process is stopped.
        out.push_back(
            say(Kind::log_error, fmt::format("failed service={} ExecStartPost= exited with {}: "
                                             "stopping it",
                                             shape_.service, end.code)));
        start_failed_ = true;
        begin_stop(out, 0);
        return out;
      }
      ++step_;
      step(out);
      return out;
    case Command::reload:
    case Command::stop:
      if (phase_ == Phase::stopping) {
        next_stop_command(out);  // ExecStop= one after another, then the signal
      } else if (reload_next_ < reload_count_) {
        next_reload_command(out);  // ExecReload= one after another
      } else {
        probe_ = Probe::after_reload;
        out.push_back(act(Kind::probe_listeners));
      }
      return out;
    case Command::none:
      return out;
  }
  return out;
}

ServiceActions ServiceCore::main_exited(const ProcessEnd& end) {
  ServiceActions out;
  has_main_ = false;
  if (phase_ == Phase::main && shape_.oneshot() &&
      (end.success || shape_.main_ignore_failure[step_])) {
    // The next ExecStart=, or after the last one ExecStartPost= and the end. A failure ends
    // the service below, as any main process's would.
    if (++step_ < shape_.main_ignore_failure.size()) {
      awaiting_ = Kind::spawn_main;
      awaiting_spawn_ = true;
      out.push_back(act(Kind::spawn_main, step_));
    } else {
      step(out);
    }
    return out;
  }
  bool deliberate = phase_ == Phase::stopping;
  // The back-off restarts from RestartSec= once the service has stayed up for a while; a
  // crash loop keeps doubling.
  if (end.lifetime >= kStableRun) restarts_ = 0;
  phase_ = Phase::idle;
  let_go_ = false;
  stop_next_ = stop_count_ = 0;
  reload_next_ = reload_count_ = 0;
  timer_ = Timer::none;
  out.push_back(act(Kind::cancel_timer));
  if (deliberate && start_failed_) {
    start_failed_ = false;
    ended(out, false, false, 1);  // a failed start: Restart= and the back-off apply
    return out;
  }
  if (deliberate) {
    // Stopped by usherd: not a failure, and no restart; the next connection starts it again.
    restarts_ = 0;
    if (!shutting_down_) out.push_back(act(Kind::watch_sockets));
    return out;
  }
  ended(out, end.success || (end.by_signal && clean_signal(end.code)), end.by_signal, end.code);
  return out;
}

void ServiceCore::ended(ServiceActions& out, bool success, bool by_signal, int code) {
  phase_ = Phase::idle;
  has_main_ = false;
  if (shutting_down_) return;
  bool restart = should_restart(success, by_signal, code);
  if (success && !restart) {
    // Back to watching: the next connection starts the service again.
    restarts_ = 0;
    out.push_back(act(Kind::watch_sockets));
    return;
  }
  // A restart, or a failure that leaves the service to the next connection: either way the
  // attempts back off (RestartSec=, doubling on consecutive failures up to a cap), so a
  // service that fails without taking its pending connection cannot spin usherd in a loop
  // of activations. It never gives up for good.
  ++restarts_;
  Clock::duration delay = timer_span(shape_.restart_sec);
  for (unsigned i = 1; i < restarts_ && delay < kMaxRestartDelay; ++i) delay *= 2;
  delay = std::min<Clock::duration>(delay, kMaxRestartDelay);
  ServiceAction arm = act(Kind::arm_timer);
  arm.after = delay;
  out.push_back(arm);
  double seconds = std::chrono::duration<double>(delay).count();
  if (restart) {
    phase_ = Phase::restart_wait;
    timer_ = Timer::restart;
    out.push_back(say(Kind::log_info, fmt::format("restart service={} in {:.3f}s (attempt {})",
                                                  shape_.service, seconds, restarts_)));
  } else {
    timer_ = Timer::watch_again;
    out.push_back(say(
        Kind::log_info,
        fmt::format("watch socket={} again in {:.3f}s (service={} failed {} time{} "
                    "in a row)",
                    shape_.socket, seconds, shape_.service, restarts_, restarts_ == 1 ? "" : "s")));
  }
}

ServiceActions ServiceCore::timer_fired() {
  ServiceActions out;
  Timer which = timer_;
  timer_ = Timer::none;
  switch (which) {
    case Timer::restart:
      if (phase_ == Phase::restart_wait) {
        phase_ = Phase::idle;
        return activate();
      }
      break;
    case Timer::watch_again:
      if (phase_ == Phase::idle) out.push_back(act(Kind::watch_sockets));
      break;
    case Timer::stop_deadline:
      if (phase_ == Phase::stopping) {
        out.push_back(say(Kind::log_warning, fmt::format("stop service={} ExecStop= did not "
                                                         "finish in time",
                                                         shape_.service)));
        stop_next_ = stop_count_;
        kill_main(out);
      }
      break;
    case Timer::none:
      break;
  }
  return out;
}

ServiceActions ServiceCore::reload(std::size_t commands) {
  ServiceActions out;
  if (phase_ != Phase::running || !has_main_ || commands == 0) return out;
  reload_next_ = 0;
  reload_count_ = commands;
  out.push_back(
      say(Kind::log_info, fmt::format("reload service={} main_pid={}", shape_.service, main_pid_)));
  if (command_ == Command::none) next_reload_command(out);
  return out;
}

void ServiceCore::next_reload_command(ServiceActions& out) {
  if (reload_next_ >= reload_count_) return;
  awaiting_ = Kind::spawn_reload;
  awaiting_spawn_ = true;
  out.push_back(act(Kind::spawn_reload, reload_next_++));
}

ServiceActions ServiceCore::stop(std::size_t stop_commands) {
  ServiceActions out;
  if (timer_ != Timer::none) {
    timer_ = Timer::none;
    out.push_back(act(Kind::cancel_timer));
  }
  if (!has_main_ || phase_ == Phase::stopping) return out;
  begin_stop(out, stop_commands);
  return out;
}

ServiceActions ServiceCore::shutdown(std::size_t stop_commands) {
  shutting_down_ = true;
  return stop(stop_commands);
}

void ServiceCore::begin_stop(ServiceActions& out, std::size_t stop_commands) {
  // systemd.service(5): ExecStop= runs only for a service that started successfully; then
  // whatever is left gets KillSignal=. TimeoutStopSec= bounds the two together.
  bool was_running = phase_ == Phase::running;
  phase_ = Phase::stopping;
  reload_next_ = reload_count_ = 0;
  stop_next_ = 0;
  stop_count_ = was_running ? stop_commands : 0;
  timer_ = Timer::stop_deadline;
  ServiceAction arm = act(Kind::arm_timer);
  arm.after = timer_span(shape_.timeout_stop);
  out.push_back(arm);
  // else: the command still running (an ExecReload=) finishes first, then the stop goes on
  if (command_ == Command::none) next_stop_command(out);
}

void ServiceCore::next_stop_command(ServiceActions& out) {
  if (stop_next_ < stop_count_) {
    awaiting_ = Kind::spawn_stop;
    awaiting_spawn_ = true;
    out.push_back(act(Kind::spawn_stop, stop_next_++));
    return;
  }
  kill_main(out);
}

void ServiceCore::kill_main(ServiceActions& out) {
  // Stopped because it let the sockets go: it may be re-executing itself, and a signal the
  // old image catches is lost with it, so the signal goes again a second later.
  out.push_back(act(let_go_ ? Kind::resignal_main : Kind::kill_main));
  let_go_ = false;
}

ServiceActions ServiceCore::listeners_held(bool held, std::size_t stop_commands) {
  ServiceActions out;
  Probe why = probe_;
  probe_ = Probe::none;
  if (why == Probe::none) return out;
  if (why == Probe::record) {
    held_listeners_ = held;
    return out;
  }
  if (!has_main_) return out;
  if (held) {
    held_listeners_ = true;
    return out;
  }
  if (!held_listeners_) return out;  // never took them: nothing was lost
  // It took the sockets and let them go (OpenSSH's sshd closes every listener before it
  // re-executes itself on SIGHUP, then binds the addresses in its own configuration).
  // Connections would queue on sockets nobody accepts from: stop it, and the next
  // connection starts it again with them.
  out.push_back(say(Kind::log_warning,
                    fmt::format("service={} pid={} no longer holds the listening sockets of {} "
                                "(after {}): stopping it; the next connection starts it again",
                                shape_.service, main_pid_, shape_.socket,
                                why == Probe::after_reload ? "reload" : "ready")));
  held_listeners_ = false;
  let_go_ = true;
  ServiceActions stopping = stop(stop_commands);
  out.insert(out.end(), stopping.begin(), stopping.end());
  return out;
}

void ServiceCore::adopt(bool ready, pid_t pid) {
  has_main_ = true;
  main_pid_ = pid;
  phase_ = ready ? Phase::running : Phase::main;
}

}  // namespace usherd::supervisor

// Accept=no services: one long-lived process that takes the listening sockets itself
// (sd_listen_fds(3)), started by the first connection, as systemd's socket activation does.
//
// Phases: idle (usherd watches the sockets) -> pre (ExecStartPre= one by one) -> main
// (ExecStart=, until ready: READY=1 for Type=notify, at exec otherwise) -> post
// (ExecStartPost=) -> running. When the main process ends, Restart= decides: start again after
// RestartSec= (doubling on consecutive failures up to a cap, never giving up for good), or
// go back to idle, so the next connection starts it again. usherd keeps its own copy of every
// listening socket throughout, so nothing is lost while the service is down.
#include <signal.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "activation/fd_table.h"
#include "activation/process.h"
#include "activation/ready_log.h"
#include "supervisor/convert.h"
#include "supervisor/daemon.h"

namespace usherd::supervisor {
namespace {

constexpr auto kMaxRestartDelay = std::chrono::minutes(5);
constexpr auto kStableRun = std::chrono::seconds(10);
constexpr auto kResignalAfter = std::chrono::seconds(1);

bool should_restart(units::RestartPolicy policy, bool success, bool by_signal, int code,
                    const units::ServiceUnit& unit) {
  // RestartPreventExitStatus= lists exit codes and signals that never restart.
  for (int c : by_signal ? unit.restart_prevent_signals : unit.restart_prevent_exit_status)
    if (c == code) return false;
  switch (policy) {
    case units::RestartPolicy::no:
      return false;
    case units::RestartPolicy::always:
      return true;
    case units::RestartPolicy::on_success:
      return success;
    case units::RestartPolicy::on_failure:
      return !success;
    case units::RestartPolicy::on_abnormal:
      return by_signal;
    case units::RestartPolicy::on_abort:
      return by_signal;
    case units::RestartPolicy::on_watchdog:
      return false;
  }
  return false;
}

// systemd.service(5): besides exit code 0, death by SIGHUP, SIGINT, SIGTERM or SIGPIPE is a
// clean exit (a daemon stopped on purpose), so Restart=on-failure does not restart it.
bool clean_signal(int sig) {
  return sig == SIGHUP || sig == SIGINT || sig == SIGTERM || sig == SIGPIPE;
}

}  // namespace

void Daemon::start_service(SocketState& socket) {
  if (stopping_ || socket.run.phase != ServiceRun::Phase::idle) return;
  spdlog::info("activate socket={} service={}", socket.unit.name, socket.unit.service);
  socket.run.phase = ServiceRun::Phase::pre;
  socket.run.step = 0;
  service_step(socket);
}

void Daemon::service_step(SocketState& socket) {
  ServicePlan& plan = *socket.service;
  ServiceRun& run = socket.run;
  auto helper = [&](const activation::SpawnPlan& base, const char* what) {
    activation::SpawnPlan spawn = command_spawn(base, dev_null_.get());
    std::string name = fmt::format("{}:{}[{}]", socket.unit.service, what, run.step);
    return spawn_instance(socket, plan, std::move(spawn), Instance::Role::service_helper, name, "",
                          "", std::nullopt, Clock::now(), UniqueFd());
  };
  if (run.phase == ServiceRun::Phase::pre) {
    if (run.step < plan.pre.size()) {
      if (!helper(plan.pre[run.step], "ExecStartPre")) {
        bool ignore = plan.pre_ignore_failure[run.step];
        if (!ignore) {
          service_ended(socket, false, false, 127);
          return;
        }
        ++run.step;
        service_step(socket);
      }
      return;
    }
    run.phase = ServiceRun::Phase::main;
    run.step = 0;
    start_main_process(socket);
    return;  // mark_ready() calls back here once the service is ready (Type=oneshot: the
             // last ExecStart='s successful exit, in service_exited())
  }
  if (run.phase == ServiceRun::Phase::main) {
    run.phase = ServiceRun::Phase::post;
    run.step = 0;
    run.held_listeners = main_holds_listeners(socket);
  }
  if (run.phase == ServiceRun::Phase::post) {
    if (run.step < plan.post.size()) {
      if (!helper(plan.post[run.step], "ExecStartPost")) ++run.step;
      return;
    }
    if (!plan.main_commands.empty()) {
      // Type=oneshot: done once its commands have run; the socket is watched again.
      spdlog::info("finished service={} socket={}", socket.unit.service, socket.unit.name);
      service_ended(socket, true, false, 0);
      return;
    }
    run.phase = ServiceRun::Phase::running;
    spdlog::info("started service={} socket={}", socket.unit.service, socket.unit.name);
  }
}

void Daemon::start_main_process(SocketState& socket) {
  ServicePlan& plan = *socket.service;
  ServiceRun& run = socket.run;
  // Type=oneshot runs its ExecStart= lines one after another, each handed the sockets.
  activation::SpawnPlan spawn =
      plan.main_commands.empty() ? plan.base : plan.main_commands[run.step];
  // sd_listen_fds(3): the listening sockets from fd 3 in Listen*= order, named by
  // FileDescriptorName= (default: the socket unit's name).
  std::vector<int> listeners;
  for (auto& l : socket.listeners)
    if (l->fd) listeners.push_back(l->fd->native_handle());
  UniqueFd capture_daemon, capture_child;
  if (plan.captures_output()) {
    if (auto pair = activation::make_record_pipe()) {
      capture_daemon = std::move(pair->first);
      capture_child = std::move(pair->second);
    }
  }
  spawn = service_main_spawn(plan, std::move(spawn), listeners,
                             socket.unit.file_descriptor_name.empty()
                                 ? socket.unit.name
                                 : socket.unit.file_descriptor_name,
                             capture_child ? capture_child.get() : -1, dev_null_.get());
  Instance* main = spawn_instance(socket, plan, std::move(spawn), Instance::Role::service_main,
                                  socket.unit.service, "", "", std::nullopt, Clock::now(),
                                  std::move(capture_daemon));
  if (!main) {
    service_ended(socket, false, false, 127);
    return;
  }
  run.instance_key = main->key;
}

void Daemon::service_exited(SocketState& socket, const Instance& instance, bool success,
                            bool by_signal, int code) {
  ServiceRun& run = socket.run;
  ServicePlan& plan = *socket.service;
  bool is_main = instance.key != 0 && instance.key == run.instance_key;
  if (!is_main) {
    // An ExecStartPre=/ExecStartPost= command (or one that could not be started).
    if (run.phase == ServiceRun::Phase::pre) {
      bool ignore = run.step < plan.pre_ignore_failure.size() && plan.pre_ignore_failure[run.step];
      if (!success && !ignore) {
        spdlog::error("failed service={} ExecStartPre= exited with {}", socket.unit.service, code);
        service_ended(socket, false, by_signal, code);
        return;
      }
      ++run.step;
      service_step(socket);
    } else if (run.phase == ServiceRun::Phase::post) {
      bool ignore =
          run.step < plan.post_ignore_failure.size() && plan.post_ignore_failure[run.step];
      if (!success && !ignore) {
        // systemd.service(5): a failing ExecStartPre=/ExecStartPost= without "-" fails the
        // start, and the main process is stopped.
        spdlog::error("failed service={} ExecStartPost= exited with {}: stopping it",
                      socket.unit.service, code);
        run.start_failed = true;
        stop_service(socket);
        return;
      }
      ++run.step;
      service_step(socket);
    } else if (instance.key == run.helper_key) {
      run.helper_key = 0;
      if (run.phase == ServiceRun::Phase::stopping) {
        run_next_stop_command(socket);  // ExecStop= one after another, then the signal
      } else if (!run.reload_queue.empty()) {
        run_next_reload_command(socket);  // ExecReload= one after another
      } else {
        check_listeners_held(socket, "reload");
      }
    }
    return;
  }
  if (run.phase == ServiceRun::Phase::main && !plan.main_commands.empty() &&
      (success || plan.main_ignore_failure[run.step])) {
    // Type=oneshot: the next ExecStart=, or after the last one ExecStartPost= and the end
    // (service_step). A failure ends the service below, as any main process's would.
    run.instance_key = 0;
    if (++run.step < plan.main_commands.size())
      start_main_process(socket);
    else
      service_step(socket);
    return;
  }
  bool deliberate = run.phase == ServiceRun::Phase::stopping;
  // The back-off restarts from RestartSec= once the service has stayed up for a while (as
  // long as systemd's default start-limit interval); a crash loop keeps doubling.
  if (Clock::now() - instance.started >= kStableRun) run.restarts = 0;
  run.instance_key = 0;
  run.phase = ServiceRun::Phase::idle;
  run.let_go = false;
  if (run.resignal_timer) run.resignal_timer->cancel();
  run.stop_queue.clear();
  run.reload_queue.clear();
  if (run.timer) run.timer->cancel();
  if (deliberate && run.start_failed) {
    run.start_failed = false;
    service_ended(socket, false, false, 1);  // a failed start: Restart= and the back-off apply
    return;
  }
  if (deliberate) {
    // Stopped by usherd: not a failure, and no restart; the next connection starts it again.
    run.restarts = 0;
    if (!stopping_)
      for (auto& l : socket.listeners) arm_listener(*l);
    return;
  }
  service_ended(socket, success || (by_signal && clean_signal(code)), by_signal, code);
}

void Daemon::service_ended(SocketState& socket, bool success, bool by_signal, int code) {
  ServiceRun& run = socket.run;
  ServicePlan& plan = *socket.service;
  run.phase = ServiceRun::Phase::idle;
  run.instance_key = 0;
  if (stopping_) return;
  bool restart = should_restart(plan.unit.restart, success, by_signal, code, plan.unit);
  if (success && !restart) {
    // Back to watching: the next connection starts the service again.
    run.restarts = 0;
    for (auto& l : socket.listeners) arm_listener(*l);
    return;
  }
  // A restart, or a failure that leaves the service to the next connection: either way the
  // attempts back off (RestartSec=, doubling on consecutive failures up to a cap), so a
  // service that fails without taking its pending connection cannot spin usherd in a loop
  // of activations. It never gives up for good.
  ++run.restarts;
  auto delay = to_timer_duration(plan.unit.restart_sec);
  for (unsigned i = 1; i < run.restarts && delay < kMaxRestartDelay; ++i) delay *= 2;
  delay = std::min<Clock::duration>(delay, kMaxRestartDelay);
  if (!run.timer) run.timer = std::make_unique<asio::steady_timer>(io_);
  run.timer->expires_after(delay);
  double seconds = std::chrono::duration<double>(delay).count();
  if (restart) {
    run.phase = ServiceRun::Phase::restart_wait;
    spdlog::info("restart service={} in {:.3f}s (attempt {})", socket.unit.service, seconds,
                 run.restarts);
  } else {
    spdlog::info("watch socket={} again in {:.3f}s (service={} failed {} time{} in a row)",
                 socket.unit.name, seconds, socket.unit.service, run.restarts,
                 run.restarts == 1 ? "" : "s");
  }
  run.timer->async_wait(
      [this, name = socket.unit.name, restart](const boost::system::error_code& ec) {
        SocketState* self = ec ? nullptr : find_socket(name);
        if (self == nullptr) return;
        if (restart && self->run.phase == ServiceRun::Phase::restart_wait) {
          self->run.phase = ServiceRun::Phase::idle;
          start_service(*self);
        } else if (!restart && self->run.phase == ServiceRun::Phase::idle) {
          for (auto& l : self->listeners) arm_listener(*l);
        }
      });
}

void Daemon::stop_service(SocketState& socket) {
  ServiceRun& run = socket.run;
  if (run.timer) run.timer->cancel();
  auto it = instances_.find(run.instance_key);
  if (it == instances_.end() || run.phase == ServiceRun::Phase::stopping) return;
  const units::ServiceUnit& unit = socket.service->unit;
  bool was_running = run.phase == ServiceRun::Phase::running;
  run.phase = ServiceRun::Phase::stopping;
  run.reload_queue.clear();
  // systemd.service(5): ExecStop= runs only for a service that started successfully; then
  // whatever is left gets KillSignal=. TimeoutStopSec= bounds the two together.
  if (was_running && !unit.exec_stop.empty()) {
    if (auto commands = service_commands(*socket.service, unit.exec_stop, it->second->pid))
      run.stop_queue = std::move(*commands);
    else
      spdlog::error("{}", commands.error().message);
  }
  if (!run.timer) run.timer = std::make_unique<asio::steady_timer>(io_);
  run.timer->expires_after(to_timer_duration(unit.timeout_stop));
  run.timer->async_wait([this, name = socket.unit.name](const boost::system::error_code& ec) {
    SocketState* self = ec ? nullptr : find_socket(name);
    if (self == nullptr || self->run.phase != ServiceRun::Phase::stopping) return;
    spdlog::warn("stop service={} ExecStop= did not finish in time", self->unit.service);
    self->run.stop_queue.clear();
    kill_service_main(*self);
  });
  if (run.helper_key == 0) run_next_stop_command(socket);
  // else: the ExecReload= command still running finishes first, then the stop goes on
}

void Daemon::run_next_stop_command(SocketState& socket) {
  ServiceRun& run = socket.run;
  while (!run.stop_queue.empty()) {
    activation::SpawnPlan spawn = std::move(run.stop_queue.front());
    run.stop_queue.erase(run.stop_queue.begin());
    if (spawn_service_command(socket, std::move(spawn), "ExecStop")) return;
  }
  kill_service_main(socket);
}

bool Daemon::signal_service_group(const Instance& main, int signal) {
  // No cgroup of its own: the service's session (it called setsid at spawn, so its process
  // group id is its pid) stands for the control group. The main process gets the signal from
  // this call while it is still in that group, and must not get it twice (a second SIGINT or
  // SIGTERM means "now, without cleaning up" to many programs): looked at after the kill, so
  // a main process that left the group before it is signalled on its own.
  if (::kill(-main.pid, signal) != 0) return false;
  return ::getpgid(main.pid) == main.pid;
}

void Daemon::kill_service_main(SocketState& socket) {
  auto it = instances_.find(socket.run.instance_key);
  if (it == instances_.end()) return;
  Instance& main = *it->second;
  // Signalled already (a main that only said STOPPING=1 itself is signalled now).
  if (main.state == Instance::State::stopping && !main.stopping_by_itself) return;
  const units::ServiceUnit& unit = socket.service->unit;
  auto after = to_timer_duration(unit.timeout_stop);
  bool main_signalled = unit.kill_mode == units::KillMode::control_group &&
                        signal_service_group(main, unit.kill_signal);
  if (unit.kill_mode != units::KillMode::none) stop(main, unit.kill_signal, after, main_signalled);
  if (socket.run.let_go && unit.kill_mode != units::KillMode::none) {
    // sshd closes its listeners, then re-executes itself: a signal that reaches the old
    // image in between runs its handler and is forgotten at the execve (seen under load:
    // the new sshd kept running until TimeoutStopSec=). Once more after a second, to
    // whatever is running under that pid by then.
    socket.run.let_go = false;
    if (!socket.run.resignal_timer)
      socket.run.resignal_timer = std::make_unique<asio::steady_timer>(io_);
    socket.run.resignal_timer->expires_after(kResignalAfter);
    std::uint64_t key = main.key;
    socket.run.resignal_timer->async_wait(
        [this, key, name = socket.unit.name](const boost::system::error_code& ec) {
          SocketState* self = ec ? nullptr : find_socket(name);
          auto found = instances_.find(key);
          if (self == nullptr || found == instances_.end()) return;
          const units::ServiceUnit& u = self->service->unit;
          Instance& still = *found->second;
          spdlog::info("stop service={} pid={} still running: {} again", self->unit.service,
                       still.pid, strsignal(u.kill_signal));
          if (u.kill_mode == units::KillMode::control_group &&
              signal_service_group(still, u.kill_signal))
            return;
          (void)activation::send_signal(still.pidfd.get(), u.kill_signal);
        });
  }
}

void Daemon::reload_service(SocketState& socket) {
  ServicePlan& plan = *socket.service;
  auto it = instances_.find(socket.run.instance_key);
  if (socket.run.phase != ServiceRun::Phase::running || it == instances_.end() ||
      plan.unit.exec_reload.empty())
    return;
  auto commands = service_commands(plan, plan.unit.exec_reload, it->second->pid);
  if (!commands) {
    spdlog::error("{}", commands.error().message);
    return;
  }
  socket.run.reload_queue = std::move(*commands);
  spdlog::info("reload service={} main_pid={}", plan.unit.name, it->second->pid);
  if (socket.run.helper_key == 0) run_next_reload_command(socket);
}

void Daemon::run_next_reload_command(SocketState& socket) {
  while (!socket.run.reload_queue.empty()) {
    activation::SpawnPlan spawn = std::move(socket.run.reload_queue.front());
    socket.run.reload_queue.erase(socket.run.reload_queue.begin());
    if (spawn_service_command(socket, std::move(spawn), "ExecReload")) return;
    socket.run.reload_queue.clear();  // systemd stops at the first command that fails
  }
}

bool Daemon::spawn_service_command(SocketState& socket, activation::SpawnPlan spawn,
                                   const char* what) {
  spawn = command_spawn(std::move(spawn), dev_null_.get());
  std::string name = fmt::format("{}:{}", socket.unit.service, what);
  Instance* helper =
      spawn_instance(socket, *socket.service, std::move(spawn), Instance::Role::service_helper,
                     name, "", "", std::nullopt, Clock::now(), UniqueFd());
  socket.run.helper_key = helper ? helper->key : 0;
  return helper != nullptr;
}

void Daemon::service_ready_again(Instance& main) {
  // READY=1 from a main process that was ready already: it reloaded (sshd sends it again
  // after re-executing itself on SIGHUP).
  SocketState* socket = find_socket(main.socket);
  if (socket == nullptr || socket->run.instance_key != main.key) return;
  spdlog::info("ready again service={} pid={}", main.name, main.pid);
  if (socket->run.phase == ServiceRun::Phase::running) check_listeners_held(*socket, "ready");
}

bool Daemon::main_holds_listeners(const SocketState& socket) const {
  auto it = instances_.find(socket.run.instance_key);
  if (it == instances_.end()) return false;
  std::vector<ino_t> inodes;
  for (const auto& l : socket.listeners)
    if (l->fd)
      if (auto inode = activation::socket_inode(l->fd->native_handle())) inodes.push_back(*inode);
  // The main process or any process below it (a daemon may hand its listeners to a worker).
  std::vector<pid_t> pending{it->second->pid};
  for (std::size_t seen = 0; !pending.empty() && seen < 256; ++seen) {
    pid_t pid = pending.back();
    pending.pop_back();
    if (auto holds = activation::holds_any_socket(pid, inodes); holds && *holds) return true;
    for (pid_t child : activation::child_pids(pid)) pending.push_back(child);
  }
  return false;
}

void Daemon::check_listeners_held(SocketState& socket, const char* when) {
  if (instances_.count(socket.run.instance_key) == 0) return;
  if (main_holds_listeners(socket)) {
    socket.run.held_listeners = true;
    return;
  }
  if (!socket.run.held_listeners) return;  // never took them: nothing was lost
  // It took the sockets and let them go (OpenSSH's sshd closes every listener before it
  // re-executes itself on SIGHUP, then binds the addresses in its own configuration).
  // Connections would queue on sockets nobody accepts from: stop it, and the next
  // connection starts it again with them.
  spdlog::warn(
      "service={} pid={} no longer holds the listening sockets of {} (after {}): stopping it; "
      "the next connection starts it again",
      socket.unit.service, instances_.at(socket.run.instance_key)->pid, socket.unit.name, when);
  socket.run.held_listeners = false;
  socket.run.let_go = true;
  stop_service(socket);
}

}  // namespace usherd::supervisor

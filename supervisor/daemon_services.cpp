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

#include "activation/ready_log.h"
#include "supervisor/daemon.h"

namespace usherd::supervisor {
namespace {

constexpr auto kMaxRestartDelay = std::chrono::minutes(5);

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
    activation::SpawnPlan spawn = base;
    spawn.fds.push_back({dev_null_.get(), 0});
    spawn.fds.push_back({dev_null_.get(), 1});
    spawn.fds.push_back({dev_null_.get(), 2});
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
    activation::SpawnPlan spawn = plan.base;
    // sd_listen_fds(3): the listening sockets from fd 3 in Listen*= order, named by
    // FileDescriptorName= (default: the socket unit's name).
    std::string names;
    int target = 3;
    for (auto& l : socket.listeners) {
      if (!l->fd) continue;
      spawn.fds.push_back({l->fd->native_handle(), target++});
      std::string name = socket.unit.file_descriptor_name.empty()
                             ? socket.unit.name
                             : socket.unit.file_descriptor_name;
      names += (names.empty() ? "" : ":") + name;
    }
    int count = target - 3;
    UniqueFd capture_daemon, capture_child;
    if (plan.out == ServicePlan::Out::journal || plan.err == ServicePlan::Out::journal ||
        plan.ready_log) {
      if (auto pair = activation::make_record_pipe()) {
        capture_daemon = std::move(pair->first);
        capture_child = std::move(pair->second);
      }
    }
    int out_fd = plan.out == ServicePlan::Out::journal && capture_child ? capture_child.get()
                                                                        : dev_null_.get();
    int err_fd = (plan.err == ServicePlan::Out::journal || plan.ready_log) && capture_child
                     ? capture_child.get()
                     : dev_null_.get();
    if (plan.stdin_socket && count == 1) {
      // inetd's "wait" mode: the one listening socket on stdin (and on stdout/stderr when
      // they inherit it), e.g. a datagram service.
      int listener = spawn.fds.back().source;
      spawn.fds.clear();
      spawn.fds.push_back({listener, 0});
      spawn.fds.push_back({plan.out == ServicePlan::Out::socket ? listener : out_fd, 1});
      spawn.fds.push_back({plan.err == ServicePlan::Out::socket ? listener : err_fd, 2});
    } else {
      spawn.fds.push_back({dev_null_.get(), 0});
      spawn.fds.push_back({out_fd, 1});
      spawn.fds.push_back({err_fd, 2});
      spawn.env.push_back("LISTEN_FDS=" + std::to_string(count));
      spawn.env.push_back("LISTEN_FDNAMES=" + names);
      spawn.set_listen_pid = true;
    }
    Instance* main = spawn_instance(socket, plan, std::move(spawn), Instance::Role::service_main,
                                    socket.unit.service, "", "", std::nullopt, Clock::now(),
                                    std::move(capture_daemon));
    if (!main) {
      service_ended(socket, false, false, 127);
      return;
    }
    run.instance_key = main->key;
    return;  // mark_ready() calls back here once the service is ready
  }
  if (run.phase == ServiceRun::Phase::main) {
    run.phase = ServiceRun::Phase::post;
    run.step = 0;
  }
  if (run.phase == ServiceRun::Phase::post) {
    if (run.step < plan.post.size()) {
      if (!helper(plan.post[run.step], "ExecStartPost")) ++run.step;
      return;
    }
    run.phase = ServiceRun::Phase::running;
    run.restarts = 0;
    spdlog::info("started service={} socket={}", socket.unit.service, socket.unit.name);
  }
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
      return;
    } else if (run.phase == ServiceRun::Phase::post) {
      ++run.step;
      service_step(socket);
      return;
    } else {
      run_next_reload_command(socket);  // ExecReload= commands run one after another
      return;
    }
  } else {
    run.instance_key = 0;
    run.phase = ServiceRun::Phase::idle;
  }
  service_ended(socket, success, by_signal, code);
}

void Daemon::service_ended(SocketState& socket, bool success, bool by_signal, int code) {
  ServiceRun& run = socket.run;
  ServicePlan& plan = *socket.service;
  run.phase = ServiceRun::Phase::idle;
  run.instance_key = 0;
  if (stopping_) return;
  if (should_restart(plan.unit.restart, success, by_signal, code, plan.unit)) {
    ++run.restarts;
    auto delay = std::chrono::duration_cast<Clock::duration>(plan.unit.restart_sec);
    for (unsigned i = 1; i < run.restarts && delay < kMaxRestartDelay; ++i) delay *= 2;
    delay = std::min<Clock::duration>(delay, kMaxRestartDelay);
    run.phase = ServiceRun::Phase::restart_wait;
    if (!run.timer) run.timer = std::make_unique<asio::steady_timer>(io_);
    run.timer->expires_after(delay);
    spdlog::info("restart service={} in {:.1f}s (attempt {})", socket.unit.service,
                 std::chrono::duration<double>(delay).count(), run.restarts);
    SocketState* self = &socket;
    run.timer->async_wait([this, self](const boost::system::error_code& ec) {
      if (ec || self->run.phase != ServiceRun::Phase::restart_wait) return;
      self->run.phase = ServiceRun::Phase::idle;
      start_service(*self);
    });
    return;
  }
  // Back to watching: the next connection starts the service again.
  for (auto& l : socket.listeners) arm_listener(*l);
}

void Daemon::stop_service(SocketState& socket) {
  if (socket.run.timer) socket.run.timer->cancel();
  auto it = instances_.find(socket.run.instance_key);
  if (it == instances_.end()) return;
  Instance& main = *it->second;
  auto after = std::chrono::duration_cast<Clock::duration>(socket.service->unit.timeout_stop);
  if (socket.service->unit.kill_mode == units::KillMode::control_group) {
    // No cgroup of its own: the service's session (it called setsid at spawn, so its
    // process group id is its pid) stands for the control group.
    ::kill(-main.pid, socket.service->unit.kill_signal);
  }
  if (socket.service->unit.kill_mode != units::KillMode::none)
    stop(main, socket.service->unit.kill_signal, after);
}

void Daemon::reload_service(SocketState& socket) {
  ServicePlan& plan = *socket.service;
  auto it = instances_.find(socket.run.instance_key);
  if (socket.run.phase != ServiceRun::Phase::running || it == instances_.end() ||
      plan.unit.exec_reload.empty())
    return;
  // systemd.service(5): ExecReload= commands run in order with $MAINPID naming the main
  // process, so they are expanded now rather than at load time.
  std::vector<std::string> env = plan.base.env;
  env.push_back("MAINPID=" + std::to_string(it->second->pid));
  socket.run.reload_queue.clear();
  for (const auto& cmd : plan.unit.exec_reload) {
    auto argv = units::expand_exec_argv(cmd, env);
    if (!argv) {
      spdlog::error("reload service={}: {}", plan.unit.name, argv.error().to_string());
      return;
    }
    activation::SpawnPlan spawn = plan.base;
    spawn.path = cmd.path;
    spawn.argv = std::move(*argv);
    spawn.env = env;
    socket.run.reload_queue.push_back(std::move(spawn));
  }
  spdlog::info("reload service={} main_pid={}", plan.unit.name, it->second->pid);
  run_next_reload_command(socket);
}

void Daemon::run_next_reload_command(SocketState& socket) {
  if (socket.run.reload_queue.empty()) return;
  activation::SpawnPlan spawn = std::move(socket.run.reload_queue.front());
  socket.run.reload_queue.erase(socket.run.reload_queue.begin());
  spawn.fds.push_back({dev_null_.get(), 0});
  spawn.fds.push_back({dev_null_.get(), 1});
  spawn.fds.push_back({dev_null_.get(), 2});
  std::string name = socket.unit.service + ":ExecReload";
  if (!spawn_instance(socket, *socket.service, std::move(spawn), Instance::Role::service_helper,
                      name, "", "", std::nullopt, Clock::now(), UniqueFd()))
    socket.run.reload_queue.clear();
}

}  // namespace usherd::supervisor

#include "supervisor/service_runner.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "activation/fd_table.h"
#include "activation/process.h"
#include "activation/ready_log.h"
#include "supervisor/convert.h"

namespace usherd::supervisor {
namespace {

using Kind = ServiceAction::Kind;

constexpr auto kResignalAfter = std::chrono::seconds(1);

// No cgroup of its own: the service's session (it called setsid at spawn, so its process
// group id is its pid) stands for the control group. The main process gets the signal from
// this call while it is still in that group, and must not get it twice (a second SIGINT or
// SIGTERM means "now, without cleaning up" to many programs): looked at after the kill, so a
// main process that left the group before it is signalled on its own.
bool signal_service_group(const Instance& main, int signal) {
  if (::kill(-main.pid, signal) != 0) return false;
  return ::getpgid(main.pid) == main.pid;
}

ProcessEnd end_of(const Instance& instance, const EndStatus& status, Clock::time_point now) {
  ProcessEnd end;
  end.by_signal = status && status->signaled;
  end.code = status ? status->code_or_signal : 0;
  end.success = status && !status->signaled && status->code_or_signal == 0;
  end.lifetime = now - instance.started;
  return end;
}

}  // namespace

ServiceShape shape_of(const Socket& socket) {
  const ServicePlan& plan = *socket.service;
  ServiceShape s;
  s.socket = socket.unit.name;
  s.service = socket.unit.service;
  s.pre_ignore_failure = plan.pre_ignore_failure;
  s.post_ignore_failure = plan.post_ignore_failure;
  s.main_ignore_failure = plan.main_ignore_failure;
  s.restart = plan.unit.restart;
  s.restart_sec = plan.unit.restart_sec;
  s.restart_prevent_exit_status = plan.unit.restart_prevent_exit_status;
  s.restart_prevent_signals = plan.unit.restart_prevent_signals;
  s.timeout_stop = plan.unit.timeout_stop;
  return s;
}

ServiceRunner::ServiceRunner(asio::io_context& io, Socket& socket, InstanceTable& instances,
                             ReadinessMonitor& readiness, ListenerSet& listeners, int dev_null)
    : io_(io),
      socket_(&socket),
      instances_(instances),
      readiness_(readiness),
      listeners_(listeners),
      dev_null_(dev_null),
      core_(shape_of(socket)),
      timer_(io),
      resignal_timer_(io) {}

ServiceRunner::~ServiceRunner() {
  instances_.disown(this);
}

void ServiceRunner::rebind(Socket& socket) {
  socket_ = &socket;
  core_.reshape(shape_of(socket));
}

void ServiceRunner::activate() {
  execute(core_.activate());
}

void ServiceRunner::reload() {
  const ServicePlan& plan = *socket_->service;
  Instance* main = instances_.find(main_key_);
  if (core_.phase() != ServiceCore::Phase::running || main == nullptr ||
      plan.unit.exec_reload.empty())
    return;
  auto commands = service_commands(plan, plan.unit.exec_reload, main->pid);
  if (!commands) {
    spdlog::error("{}", commands.error().message);
    return;
  }
  reload_commands_ = std::move(*commands);
  execute(core_.reload(reload_commands_.size()));
}

void ServiceRunner::shutdown() {
  execute(core_.shutdown(prepare_stop_commands()));
}

std::size_t ServiceRunner::prepare_stop_commands() {
  stop_commands_.clear();
  const ServicePlan& plan = *socket_->service;
  Instance* main = instances_.find(main_key_);
  if (main == nullptr || plan.unit.exec_stop.empty()) return 0;
  if (auto commands = service_commands(plan, plan.unit.exec_stop, main->pid))
    stop_commands_ = std::move(*commands);
  else
    spdlog::error("{}", commands.error().message);
  return stop_commands_.size();
}

void ServiceRunner::adopt(Instance& instance, units::Duration startup_timeout,
                          Clock::time_point now) {
  instance.owner = this;
  instance.role = Instance::Role::service_main;
  instance.plan = socket_->service;
  main_key_ = instance.key;
  bool ready = instance.state != Instance::State::starting;
  core_.adopt(ready, instance.pid);
  if (!ready) readiness_.resume_startup(instance, startup_timeout, now);
}

void ServiceRunner::execute(ServiceActions actions) {
  // Actions run in order; those that a spawn's answer (or a readiness reached during it)
  // produces are queued behind the rest.
  pending_.insert(pending_.end(), std::make_move_iterator(actions.begin()),
                  std::make_move_iterator(actions.end()));
  if (executing_) return;
  executing_ = true;
  while (!pending_.empty()) {
    ServiceAction action = std::move(pending_.front());
    pending_.erase(pending_.begin());
    perform(action);
  }
  executing_ = false;
}

void ServiceRunner::perform(const ServiceAction& action) {
  const ServicePlan& plan = *socket_->service;
  const std::string& service = socket_->unit.service;
  switch (action.kind) {
    case Kind::spawn_pre: {
      Instance* c = spawn_command(plan.pre[action.step],
                                  fmt::format("{}:ExecStartPre[{}]", service, action.step));
      execute(core_.spawned(c != nullptr));
      break;
    }
    case Kind::spawn_post: {
      Instance* c = spawn_command(plan.post[action.step],
                                  fmt::format("{}:ExecStartPost[{}]", service, action.step));
      execute(core_.spawned(c != nullptr));
      break;
    }
    case Kind::spawn_reload: {
      Instance* c = action.step < reload_commands_.size()
                        ? spawn_command(reload_commands_[action.step], service + ":ExecReload")
                        : nullptr;
      execute(core_.spawned(c != nullptr));
      break;
    }
    case Kind::spawn_stop: {
      Instance* c = action.step < stop_commands_.size()
                        ? spawn_command(stop_commands_[action.step], service + ":ExecStop")
                        : nullptr;
      execute(core_.spawned(c != nullptr));
      break;
    }
    case Kind::spawn_main:
      (void)spawn_main(action.step);
      break;
    case Kind::kill_main:
      kill_main(false);
      break;
    case Kind::resignal_main:
      kill_main(true);
      break;
    case Kind::arm_timer:
      timer_.expires_after(action.after);
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) execute(core_.timer_fired());
      });
      break;
    case Kind::cancel_timer:
      timer_.cancel();
      break;
    case Kind::watch_sockets:
      listeners_.arm_all(*socket_);
      break;
    case Kind::probe_listeners: {
      bool held = main_holds_listeners();
      execute(core_.listeners_held(held, held ? 0 : prepare_stop_commands()));
      break;
    }
    case Kind::log_info:
      spdlog::info("{}", action.text);
      break;
    case Kind::log_warning:
      spdlog::warn("{}", action.text);
      break;
    case Kind::log_error:
      spdlog::error("{}", action.text);
      break;
  }
}

Instance* ServiceRunner::spawn_command(const activation::SpawnPlan& plan, std::string name) {
  Instance* command = spawn(command_spawn(plan, dev_null_), Instance::Role::service_helper,
                            std::move(name), UniqueFd());
  command_key_ = command ? command->key : 0;
  return command;
}

Instance* ServiceRunner::spawn_main(std::size_t step) {
  const ServicePlan& plan = *socket_->service;
  // Type=oneshot runs its ExecStart= lines one after another, each handed the sockets.
  activation::SpawnPlan base = plan.main_commands.empty() ? plan.base : plan.main_commands[step];
  // sd_listen_fds(3): the listening sockets from fd 3 in Listen*= order, named by
  // FileDescriptorName= (default: the socket unit's name).
  UniqueFd capture_daemon, capture_child;
  if (plan.captures_output()) {
    if (auto pair = activation::make_record_pipe()) {
      capture_daemon = std::move(pair->first);
      capture_child = std::move(pair->second);
    }
  }
  const units::SocketUnit& unit = socket_->unit;
  activation::SpawnPlan spawn_plan =
      service_main_spawn(plan, std::move(base), socket_->fds(),
                         unit.file_descriptor_name.empty() ? unit.name : unit.file_descriptor_name,
                         capture_child ? capture_child.get() : -1, dev_null_);
  Instance* main = spawn(std::move(spawn_plan), Instance::Role::service_main, unit.service,
                         std::move(capture_daemon));
  if (main == nullptr) {
    execute(core_.spawned(false));
    return nullptr;
  }
  main_key_ = main->key;
  execute(core_.main_spawned(main->pid));
  // No readiness signal declared: ready once started (a oneshot: when its commands are done).
  if (!plan.declares_readiness && plan.main_commands.empty())
    readiness_.mark_ready(*main, "exec", Clock::now());
  return main;
}

Instance* ServiceRunner::spawn(activation::SpawnPlan spawn_plan, Instance::Role role,
                               std::string name, UniqueFd output) {
  // On the loop, waiting for the exec: an Accept=no service's processes are rare, and their
  // order matters. Connections go through the launcher instead.
  const ServicePlan& plan = *socket_->service;
  prepare_runtime_directories(plan, name);
  auto spawned = activation::spawn(spawn_plan);
  Clock::time_point now = Clock::now();
  if (!spawned) {
    ++spawn_failures_;
    socket_->drop_log.drop(now,
                           fmt::format("spawn instance={} socket={} peer={} failed: {}", name,
                                       socket_->unit.name, "", spawned.error().to_string()),
                           socket_->unit.name);
    if (is_fd_exhaustion(spawned.error().code))
      listeners_.pause_all(*socket_, spawned.error().code);
    return nullptr;
  }
  auto instance = std::make_unique<Instance>();
  instance->name = std::move(name);
  instance->socket = socket_->unit.name;
  instance->role = role;
  instance->owner = this;
  instance->pid = spawned->pid;
  instance->pidfd = std::move(spawned->pidfd);
  if (role != Instance::Role::service_helper) {
    if (auto inode = activation::pidfd_inode(instance->pidfd.get()); inode && *inode)
      instance->pidfd_inode = *inode;
    else if (auto st = activation::process_start_time(instance->pid))
      instance->start_time = *st;
  }
  instance->started = now;
  instance->started_wall = std::chrono::system_clock::now();
  instance->plan = socket_->service;
  if (role == Instance::Role::service_helper) instance->state = Instance::State::running;
  if (output)
    instance->output = std::make_unique<asio::posix::stream_descriptor>(io_, output.release());
  Instance& ref = instances_.track(std::move(instance));
  if (ref.output) readiness_.watch_output(ref);
  instances_.persist(ref, StateFile::Event::spawned);
  instances_.flush_state();
  return &ref;
}

void ServiceRunner::kill_main(bool resignal) {
  Instance* main = instances_.find(main_key_);
  if (main == nullptr) return;
  // Signalled already (a main that only said STOPPING=1 itself is signalled now).
  if (main->state == Instance::State::stopping && !main->stopping_by_itself) return;
  const units::ServiceUnit& unit = socket_->service->unit;
  auto after = to_timer_duration(unit.timeout_stop);
  bool main_signalled = unit.kill_mode == units::KillMode::control_group &&
                        signal_service_group(*main, unit.kill_signal);
  if (unit.kill_mode != units::KillMode::none)
    instances_.stop(*main, unit.kill_signal, after, main_signalled);
  if (resignal && unit.kill_mode != units::KillMode::none) {
    // sshd closes its listeners, then re-executes itself: a signal that reaches the old
    // image in between runs its handler and is forgotten at the execve (seen under load:
    // the new sshd kept running until TimeoutStopSec=). Once more after a second, to
    // whatever is running under that pid by then.
    resignal_timer_.expires_after(kResignalAfter);
    std::uint64_t key = main->key;
    resignal_timer_.async_wait([this, key](const boost::system::error_code& ec) {
      Instance* still = ec ? nullptr : instances_.find(key);
      if (still == nullptr) return;
      const units::ServiceUnit& u = socket_->service->unit;
      spdlog::info("stop service={} pid={} still running: {} again", socket_->unit.service,
                   still->pid, strsignal(u.kill_signal));
      if (u.kill_mode == units::KillMode::control_group &&
          signal_service_group(*still, u.kill_signal))
        return;
      (void)activation::send_signal(still->pidfd.get(), u.kill_signal);
    });
  }
}

bool ServiceRunner::main_holds_listeners() const {
  Instance* main = instances_.find(main_key_);
  if (main == nullptr) return false;
  std::vector<ino_t> inodes;
  for (int fd : socket_->fds())
    if (auto inode = activation::socket_inode(fd)) inodes.push_back(*inode);
  // The main process or any process below it (a daemon may hand its listeners to a worker).
  std::vector<pid_t> pending{main->pid};
  for (std::size_t seen = 0; !pending.empty() && seen < 256; ++seen) {
    pid_t pid = pending.back();
    pending.pop_back();
    if (auto holds = activation::holds_any_socket(pid, inodes); holds && *holds) return true;
    for (pid_t child : activation::child_pids(pid)) pending.push_back(child);
  }
  return false;
}

void ServiceRunner::instance_ready(Instance& instance, const char*, Clock::time_point) {
  if (instance.key == main_key_) execute(core_.main_ready());
}

void ServiceRunner::instance_ready_again(Instance& instance) {
  // READY=1 from a main process that was ready already: it reloaded (sshd sends it again
  // after re-executing itself on SIGHUP).
  if (instance.key != main_key_) return;
  spdlog::info("ready again service={} pid={}", instance.name, instance.pid);
  execute(core_.main_ready_again());
}

void ServiceRunner::instance_ended(Instance& instance, const EndStatus& status,
                                   Clock::time_point now) {
  log_end(instance, status, now);
  ProcessEnd end = end_of(instance, status, now);
  if (instance.key == main_key_) {
    main_key_ = 0;
    resignal_timer_.cancel();
    execute(core_.main_exited(end));
  } else if (instance.key == command_key_) {
    command_key_ = 0;
    execute(core_.command_exited(end));
  }
}

}  // namespace usherd::supervisor

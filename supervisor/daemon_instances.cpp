// Tracking the processes usherd started: their exit (through the pidfd), their readiness
// (notify datagrams, a ready-log record, or a successful exec), the startup timeout, and
// their captured output.
//
// Readiness must be unforgeable (DESIGN.md "Readiness"): a datagram counts only when the
// kernel-supplied SCM_CREDENTIALS pid is the instance's main process or, with
// NotifyAccess=all, a descendant of it; a ready-log record counts only when it *begins* with
// a match, because sshd -e copies attacker-chosen bytes (CR/LF included) into the middle of
// its records.
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "activation/notify.h"
#include "activation/process.h"
#include "activation/runtime_dir.h"
#include "supervisor/convert.h"
#include "supervisor/daemon.h"
#include "supervisor/logging.h"

namespace usherd::supervisor {
namespace {

constexpr std::size_t kMaxRecord = 4096;
// STATUS= lines an instance may have logged per window; the rest are counted in one line.
constexpr unsigned kStatusBurst = 10;
constexpr auto kStatusWindow = std::chrono::seconds(10);

std::int64_t boottime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Instance* Daemon::find_by_pid(pid_t pid) {
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return nullptr;
  auto inst = instances_.find(it->second);
  return inst == instances_.end() ? nullptr : inst->second.get();
}

void Daemon::prepare_runtime_directories(const ServicePlan& plan, const std::string& name) {
  // RuntimeDirectory=: created (again, if something removed it) before every start; one
  // mkdir that finds it present costs a microsecond against the spawn's hundreds.
  for (const auto& dir : plan.unit.runtime_directory) {
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    if (plan.base.credentials) {
      uid = plan.base.credentials->uid;
      gid = plan.base.credentials->gid;
    }
    if (auto made = activation::create_runtime_directory(
            "/run", dir, plan.unit.runtime_directory_mode, uid, gid);
        !made) {
      spdlog::warn("runtime directory /run/{} for {}: {}", dir, name, made.error().to_string());
    }
  }
}

Instance* Daemon::spawn_instance(SocketState& socket, ServicePlan& plan,
                                 activation::SpawnPlan&& spawn, Instance::Role role,
                                 std::string name, std::string peer, std::string remote_ip,
                                 std::optional<policy::InstanceId> admission,
                                 Clock::time_point accepted_at, UniqueFd output) {
  // On the loop: Accept=no services and their commands (rare, and their order matters).
  // Connections go through submit_spawn().
  prepare_runtime_directories(plan, name);
  auto spawned = activation::spawn(spawn);
  Clock::time_point now = Clock::now();
  if (!spawned) {
    spawn_failed(socket.unit.name, name, peer, admission, spawned.error(), now);
    return nullptr;
  }
  PendingSpawn done;
  done.name = std::move(name);
  done.peer = std::move(peer);
  done.remote_ip = std::move(remote_ip);
  done.admission = admission;
  done.accepted_at = accepted_at;
  done.output = std::move(output);
  done.spawned_at = now;
  if (role != Instance::Role::service_helper) identify(done, spawned->pid, spawned->pidfd.get());
  Instance& ref = track_instance(socket.unit.name, socket.service, role, std::move(done),
                                 spawned->pid, std::move(spawned->pidfd));
  state_file_.flush();
  return &ref;
}

void Daemon::launch_connection(PendingSpawn&& pending, activation::SpawnPlan&& spawn,
                               std::uint64_t launch_group) {
  // launch() returns once the child exists; it prepares and execs on another core while the
  // loop accepts the next connection. The caller closes usherd's copies of the connection
  // right after: the child's fd table was copied at the clone. The instance is tracked at
  // once (a service without readiness ends its startup here, before the next admission);
  // the state file and the accept lines wait for the end of the batch.
  auto launched = launcher_.launch(std::move(spawn), launch_group, pending.accepted_at);
  pending.spawned_at = Clock::now();
  if (!launched) {
    spawn_failed(pending.socket, pending.name, pending.peer, pending.admission, launched.error(),
                 pending.spawned_at, true);
    return;
  }
  identify(pending, launched->pid, launched->pidfd.get());
  std::string socket = pending.socket;
  std::shared_ptr<ServicePlan> plan = pending.plan;
  Instance& instance =
      track_instance(socket, std::move(plan), Instance::Role::connection, std::move(pending),
                     launched->pid, std::move(launched->pidfd));
  launched_.push_back(instance.key);
  spares_wanted_ = true;
}

void Daemon::refill_spare() {
  // The next connection's process is cloned ahead of it: the clone, its session and the
  // closing of usherd's fds happen off the path between that accept and that exec
  // (activation::Launcher::prestart). Not right after a launch: the spare just woken is
  // queued on the loop's own core (the kernel places a woken task beside its waker), and would
  // wait for the clone of its successor. An instance's exit is the time: at the pace of one
  // connection after another, what was launched has exec'd by then and the next connection is
  // still on its way; the housekeeping tick refills after long-lived instances. Queued behind the
  // handlers already ready, so connections waiting are accepted first. One spare, and only
  // once usherd has launched a connection: an Accept=no-only usherd never keeps one.
  if (!spares_wanted_ || spare_queued_ || stopping_ || launcher_.has_spare()) return;
  spare_queued_ = true;
  asio::post(io_, [this] {
    spare_queued_ = false;
    // While launched children are still starting the spare would not be used (see
    // Launcher::launch); the exit that leaves none starting refills it.
    if (stopping_ || launcher_.starting() > 0) return;
    if (auto made = launcher_.prestart(); !made)
      spdlog::debug("spare process: {} (connections clone their own)", made.error().to_string());
  });
}

void Daemon::identify(PendingSpawn& spawned, pid_t pid, int pidfd) {
  // What the state file records to recognise the process after a restart: the pidfd's
  // inode (one fstat) where the kernel has pidfs, else the start time from /proc (an open,
  // a read and a close, and procfs's lookups: the costliest step of a spawn after clone).
  if (auto inode = activation::pidfd_inode(pidfd); inode && *inode) {
    spawned.pidfd_inode = *inode;
  } else if (auto st = activation::process_start_time(pid)) {
    spawned.start_time = *st;
  }
}

void Daemon::finish_launches() {
  if (launched_.empty()) return;
  std::vector<std::uint64_t> started;
  started.swap(launched_);
  // The '+' lines are on disk before the accept lines are logged: an instance anyone saw
  // accepted is re-adopted after a crash.
  state_file_.flush();
  if (spdlog::should_log(spdlog::level::info)) {
    for (std::uint64_t key : started) {
      auto it = instances_.find(key);
      if (it == instances_.end()) continue;
      const Instance& instance = *it->second;
      log_structured(
          spdlog::level::info,
          fmt::format("accept socket={} peer={} instance={} pid={} startups={}", instance.socket,
                      instance.peer, instance.name, instance.pid, startups_text()),
          instance.name, instance.socket, instance.remote_ip);
    }
  }
  update_title();
}

void Daemon::spawn_failed(const std::string& socket, const std::string& name,
                          const std::string& peer, std::optional<policy::InstanceId> admission,
                          const Error& error, Clock::time_point now, bool launch_failed) {
  ++spawn_failures_;
  if (admission) admission_->spawn_failed(*admission);
  std::string message = fmt::format("spawn instance={} socket={} peer={} failed: {}", name, socket,
                                    peer, error.to_string());
  SocketState* state = find_socket(socket);
  if (state == nullptr) {
    spdlog::error("{}", message);
    return;
  }
  state->drop_log.drop(now, message, socket);
  // Out of fds (or memory) in the spawn, or no process to be had (a launch's EAGAIN: the
  // kernel's process limits, or too many children still starting; a child's own EAGAIN is
  // its user's LimitNPROC=): the next accept would only fail the same way.
  if (is_fd_exhaustion(error.code) || (launch_failed && error.code == EAGAIN)) {
    for (auto& l : state->listeners)
      if (!l->paused) pause_listener(*l, error.code);
  }
}

Instance& Daemon::track_instance(const std::string& socket, std::shared_ptr<ServicePlan> plan,
                                 Instance::Role role, PendingSpawn&& spawned, pid_t pid,
                                 UniqueFd pidfd) {
  spawn_seconds_.observe(seconds_between(spawned.accepted_at, spawned.spawned_at));
  auto instance = std::make_unique<Instance>();
  instance->key = next_instance_key_++;
  instance->name = std::move(spawned.name);
  instance->socket = socket;
  instance->role = role;
  instance->pid = pid;
  instance->pidfd_inode = spawned.pidfd_inode;
  instance->start_time = spawned.start_time;
  instance->pidfd = std::move(pidfd);
  if (spawned.output) {
    instance->output =
        std::make_unique<asio::posix::stream_descriptor>(io_, spawned.output.release());
  }
  instance->peer = std::move(spawned.peer);
  instance->remote_ip = std::move(spawned.remote_ip);
  instance->admission = spawned.admission;
  instance->started = spawned.accepted_at;
  instance->started_wall = std::chrono::system_clock::now();
  instance->plan = std::move(plan);
  Instance& ref = *instance;
  by_pid_[ref.pid] = ref.key;
  instances_.emplace(ref.key, std::move(instance));

  watch_exit(ref);
  if (ref.output) watch_output(ref);
  if (role == Instance::Role::service_helper) {
    ref.state = Instance::State::running;
  } else if (role == Instance::Role::service_main && ref.plan && !ref.plan->main_commands.empty()) {
    // Type=oneshot: started when its last ExecStart= exits (service_exited()), not before.
  } else if (!ref.plan || !ref.plan->declares_readiness) {
    // No readiness signal declared: the startup ends when the process is started (a
    // connection's exec is not waited for; one that fails is a failed spawn when the
    // process ends). usherd --check warned that MaxStartups cannot see this service.
    mark_ready(ref, "exec", spawned.spawned_at);
  } else if (role == Instance::Role::connection) {
    SocketState* state = find_socket(socket);
    auto timeout = state && state->unit.startup_timeout ? *state->unit.startup_timeout
                                                        : daemon_config_.startup_timeout;
    if (timeout.count() > 0) arm_startup_timeout(ref, to_timer_duration(timeout));
  }
  // After mark_ready: an instance ready at exec is recorded ready in its one line.
  persist(ref, StateFile::Event::spawned);
  return ref;
}

StateEntryView Daemon::state_view(const Instance& instance) {
  StateEntryView entry;
  entry.pid = instance.pid;
  entry.pidfd_inode = instance.pidfd_inode;
  entry.start_time = instance.start_time;
  entry.started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              instance.started_wall.time_since_epoch())
                              .count();
  // Where the instance started on CLOCK_BOOTTIME: an age that no change of the wall clock
  // (and no suspend) makes wrong when a later usherd adopts it.
  auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - instance.started);
  entry.started_boot_ms = boottime_ms() - since.count();
  entry.ready = instance.state != Instance::State::starting;
  entry.socket = instance.socket;
  entry.name = instance.name;
  entry.peer = instance.peer;
  return entry;
}

StateEntry Daemon::state_entry(const Instance& instance) {
  StateEntryView v = state_view(instance);
  return StateEntry{
      v.pid,   v.pidfd_inode,         v.start_time,        v.started_unix_ms,  v.started_boot_ms,
      v.ready, std::string(v.socket), std::string(v.name), std::string(v.peer)};
}

void Daemon::persist(Instance& instance, StateFile::Event event) {
  if (instance.role == Instance::Role::service_helper) return;
  switch (event) {
    case StateFile::Event::spawned:
      // Flushed by the caller (once per batch of spawns, before their accept lines).
      instance.persisted = true;
      state_file_.record(event, state_view(instance));
      break;
    case StateFile::Event::ready:
      // Not yet recorded: its '+' line will carry ready=1.
      if (!instance.persisted) return;
      state_file_.record(event, state_view(instance));
      // A ready instance recorded as starting would be stopped by the startup timeout of the
      // usherd that re-adopts it: on disk now.
      state_file_.flush();
      break;
    case StateFile::Event::ended:
      if (!instance.persisted) return;
      // A lost '-' line costs nothing (re-adoption finds the pid gone or reused), so it
      // goes out with the next batch of '+' lines, or with housekeeping within a second.
      state_file_.record(event, state_view(instance));
      break;
  }
}

void Daemon::watch_exit(Instance& instance) {
  auto watched = instance.watched_exit ? exit_watch_->rearm(instance.pidfd.get(), instance.key)
                                       : exit_watch_->watch(instance.pidfd.get(), instance.key);
  if (watched) {
    instance.watched_exit = true;
    return;
  }
  // The kernel could not take one more watch (ENOMEM, or fs.epoll.max_user_watches): the
  // instance is looked at every second instead, not lost.
  spdlog::error("instance={} pid={} exit watch: {} (checked every second instead)", instance.name,
                instance.pid, watched.error().to_string());
  unwatched_exits_.push_back(instance.key);
}

void Daemon::wait_for_exits() {
  exit_watch_io_->async_wait(asio::posix::stream_descriptor::wait_read,
                             [this](const boost::system::error_code& ec) {
                               if (ec) return;
                               // Every report waiting is taken here, a batch at a time (asio's
                               // re-arm would see the rest too, but a wake-up per batch later). A
                               // key no longer tracked (its pidfd lived on in a child for a moment
                               // after its close) is passed over by on_exit.
                               constexpr std::size_t kBatch = 64;
                               std::size_t taken;
                               do {
                                 exit_keys_.clear();
                                 taken = exit_watch_->take(exit_keys_, kBatch);
                                 for (std::uint64_t key : exit_keys_) on_exit(key);
                               } while (taken == kBatch);
                               wait_for_exits();
                             });
}

void Daemon::poll_unwatched_exits() {
  // Taken off the list before on_exit: an instance not yet reapable goes back through
  // watch_exit (to the exit watch, or to this list if that fails again).
  std::vector<std::uint64_t> keys;
  keys.swap(unwatched_exits_);
  for (std::uint64_t key : keys) {
    auto it = instances_.find(key);
    if (it == instances_.end()) continue;
    struct pollfd p {
      it->second->pidfd.get(), POLLIN, 0
    };
    if (::poll(&p, 1, 0) == 1)
      on_exit(key);
    else
      unwatched_exits_.push_back(key);
  }
}

void Daemon::watch_output(Instance& instance) {
  std::uint64_t key = instance.key;
  instance.output->async_wait(asio::posix::stream_descriptor::wait_read,
                              [this, key](const boost::system::error_code& ec) {
                                if (ec) return;
                                auto it = instances_.find(key);
                                if (it == instances_.end()) return;
                                on_output(*it->second);
                              });
}

void Daemon::on_output(Instance& instance) {
  // SOCK_SEQPACKET: each recv() is exactly one write() of the instance, cut at kMaxRecord.
  // Drain what is queued now (bounded), then wait again; EOF means every writer closed.
  char buf[kMaxRecord];
  for (int i = 0; i < 64; ++i) {
    auto n =
        activation::receive_record(instance.output->native_handle(), buf, sizeof buf, fd_closer_);
    if (!n) {
      if (n.error().code == EAGAIN || n.error().code == EWOULDBLOCK) break;
      instance.output.reset();
      return;
    }
    if (*n == 0) {
      instance.output.reset();
      return;
    }
    std::string_view record(buf, *n);
    if (instance.state == Instance::State::starting && instance.plan && instance.plan->ready_log &&
        instance.plan->ready_log->matches_record(record)) {
      mark_ready(instance, "log", Clock::now());
    }
    while (!record.empty() && (record.back() == '\n' || record.back() == '\r'))
      record.remove_suffix(1);
    SocketState* socket = find_socket(instance.socket);
    if (socket == nullptr || socket->output_log.allow(Clock::now(), instance.socket))
      log_structured(
          spdlog::level::info,
          fmt::format("output instance={} {}", instance.name, quote_untrusted(record, 1024)),
          instance.name, instance.socket, instance.remote_ip);
  }
  watch_output(instance);
}

void Daemon::mark_ready(Instance& instance, const char* via, Clock::time_point now) {
  if (instance.state != Instance::State::starting) return;
  instance.state = Instance::State::running;
  instance.ready_via = via;
  if (instance.timer) instance.timer->cancel();
  if (instance.admission) admission_->mark_ready(*instance.admission, now);
  double after = seconds_between(instance.started, now);
  // "unknown": an adopted instance whose readiness cannot be seen; no duration to count.
  if (std::string_view(via) != "unknown") startup_seconds_[instance.socket].observe(after);
  persist(instance, StateFile::Event::ready);
  // A Type=oneshot service goes on when its commands exit, whatever they notify.
  if (instance.role == Instance::Role::service_main &&
      !(instance.plan && !instance.plan->main_commands.empty())) {
    if (SocketState* socket = find_socket(instance.socket)) service_step(*socket);
  }
  if (std::string_view(via) != "exec") {
    log_structured(spdlog::level::info,
                   fmt::format("ready instance={} after={:.3f}s via={}", instance.name, after, via),
                   instance.name, instance.socket, instance.remote_ip);
  }
  update_title();
}

void Daemon::arm_instance_timer(Instance& instance, Clock::duration after,
                                std::function<void(Instance&)> on_expiry) {
  // One timer per instance (startup deadline, stop deadline, SIGKILL escalation): arming it
  // again replaces what it was waiting for. The instance is looked up by key when it fires,
  // since it may have ended meanwhile.
  if (!instance.timer) instance.timer = std::make_unique<asio::steady_timer>(io_);
  instance.timer->expires_after(after);
  std::uint64_t key = instance.key;
  instance.timer->async_wait(
      [this, key, on_expiry = std::move(on_expiry)](const boost::system::error_code& ec) {
        if (ec) return;
        auto it = instances_.find(key);
        if (it != instances_.end()) on_expiry(*it->second);
      });
}

void Daemon::arm_startup_timeout(Instance& instance, Clock::duration timeout) {
  arm_instance_timer(instance, timeout, [this](Instance& inst) {
    if (inst.state != Instance::State::starting) return;
    ++startup_timeouts_;
    inst.timed_out = true;
    spdlog::warn("timeout instance={} socket={} peer={} startup not finished after {:.1f}s",
                 inst.name, inst.socket, inst.peer, seconds_between(inst.started, Clock::now()));
    stop_as_unit_says(inst);
  });
}

units::Duration Daemon::timeout_stop_of(const Instance& instance) {
  return instance.plan ? instance.plan->unit.timeout_stop : std::chrono::seconds(90);
}

void Daemon::stop_as_unit_says(Instance& instance) {
  int signal = instance.plan ? instance.plan->unit.kill_signal : SIGTERM;
  stop(instance, signal, to_timer_duration(timeout_stop_of(instance)));
}

void Daemon::arm_stop_timeout(Instance& instance) {
  arm_instance_timer(
      instance, to_timer_duration(timeout_stop_of(instance)), [this](Instance& inst) {
        spdlog::warn("timeout instance={} socket={} still stopping {:.1f}s after STOPPING=1",
                     inst.name, inst.socket, seconds_between(inst.started, Clock::now()));
        stop_as_unit_says(inst);
      });
}

void Daemon::stop(Instance& instance, int signal, Clock::duration escalate_after, bool signalled) {
  instance.stopping_by_itself = false;
  instance.state = Instance::State::stopping;
  if (!signalled) {
    if (auto r = activation::send_signal(instance.pidfd.get(), signal); !r) return;
  }
  // A stopped process group leader would not act on SIGTERM; systemd sends SIGCONT too.
  (void)activation::send_signal(instance.pidfd.get(), SIGCONT);
  arm_instance_timer(instance, escalate_after, [](Instance& inst) {
    spdlog::warn("kill instance={} pid={} did not stop: SIGKILL", inst.name, inst.pid);
    (void)activation::send_signal(inst.pidfd.get(), SIGKILL);
  });
}

void Daemon::on_exit(std::uint64_t key) {
  auto it = instances_.find(key);
  if (it == instances_.end()) return;
  Instance& instance = *it->second;
  if (instance.state == Instance::State::starting) {
    // A fast instance's READY=1 (or ready-log record) can still be queued when its exit is
    // seen: read it first, while the pid is unreaped and still names the instance, or a
    // successful login would count as ending before ready and earn its source a penalty.
    if (notify_) on_notification();
    if (instance.output && instance.plan && instance.plan->ready_log) on_output(instance);
    it = instances_.find(key);
    if (it == instances_.end()) return;
  }
  Clock::time_point now = Clock::now();
  refill_spare();
  std::optional<activation::ExitStatus> status;
  if (!instance.adopted) {
    auto reaped = activation::try_reap(instance.pidfd.get());
    if (reaped && !*reaped) {
      watch_exit(instance);  // readable but not yet reapable: wait again
      return;
    }
    if (reaped) status = **reaped;
  }
  bool never_ran = false;
  if (instance.role == Instance::Role::connection && status) {
    if (auto failure = launcher_.take_failure(instance.pid)) {
      // It never reached its execve (launched without waiting for it): a failed spawn, as
      // if the clone itself had failed. Not an instance that ended before ready: its source
      // is not penalised.
      spawn_failed(instance.socket, instance.name, instance.peer, instance.admission, *failure,
                   now);
      instance.admission.reset();
      never_ran = true;
    }
  }
  bool was_starting =
      instance.state == Instance::State::starting ||
      (instance.state == Instance::State::stopping && instance.ready_via == nullptr);
  if (instance.admission) {
    policy::Outcome outcome = policy::Outcome::exited;
    if (instance.timed_out)
      outcome = policy::Outcome::startup_timeout;
    else if (status && status->signaled)
      outcome = policy::Outcome::killed_by_signal;
    admission_->release(*instance.admission, outcome, now);
  }
  if (!never_ran && spdlog::should_log(spdlog::level::info)) {
    std::string how;
    if (!status)
      how = "status=unknown";  // re-adopted: it was not our child, the kernel kept its status
    else if (status->signaled)
      how = fmt::format("status=killed signal={}{}", strsignal(status->code_or_signal),
                        status->core_dumped ? " core=dumped" : "");
    else
      how = fmt::format("status=exited code={}", status->code_or_signal);
    log_structured(spdlog::level::info,
                   fmt::format("end instance={} pid={} {} {}lifetime={:.1f}s", instance.name,
                               instance.pid, how, was_starting ? "before-ready=yes " : "",
                               seconds_between(instance.started, now)),
                   instance.name, instance.socket, instance.remote_ip);
  }
  persist(instance, StateFile::Event::ended);
  if (instance.role != Instance::Role::connection) {
    if (SocketState* socket = find_socket(instance.socket)) {
      bool by_signal = status && status->signaled;
      int code = status ? status->code_or_signal : 0;
      bool success = status && !status->signaled && status->code_or_signal == 0;
      service_exited(*socket, instance, success, by_signal, code);
    }
  }
  // Drain what is still queued in the capture before forgetting the instance.
  if (instance.output) on_output(instance);
  if (instance.status_log) instance.status_log->finish(instance.socket);
  std::shared_ptr<ServicePlan> plan = instance.plan;
  by_pid_.erase(instance.pid);
  instances_.erase(it);
  // RuntimeDirectory= goes when the last instance of its service ends, unless
  // RuntimeDirectoryPreserve= says otherwise (Debian's per-connection sshd needs "yes": its
  // instances share /run/sshd).
  if (plan && !plan->unit.runtime_directory.empty() &&
      plan->unit.runtime_directory_preserve == units::RuntimeDirectoryPreserve::no) {
    bool last = true;
    for (const auto& [k, other] : instances_)
      if (other->plan && other->plan->unit.name == plan->unit.name) last = false;
    if (last)
      for (const auto& dir : plan->unit.runtime_directory)
        (void)activation::remove_tree("/run/" + dir);
  }
  if (state_file_.wants_compaction(instances_.size())) {
    std::vector<StateEntry> entries;
    for (const auto& [k, inst] : instances_)
      if (inst->role != Instance::Role::service_helper) entries.push_back(state_entry(*inst));
    if (auto r = state_file_.open(options_.runtime_dir + "/state", entries); !r)
      spdlog::warn("state file: {}", r.error().to_string());
  }
  // Its pidfd (and capture) are closed now: a listener paused for want of fds tries again.
  if (listeners_exhausted_) resume_exhausted_listeners();
  update_title();
  if (stopping_) maybe_finish_shutdown();
}

void Daemon::reap_orphans() {
  // Orphans re-parented to usherd (it is a child subreaper) are reaped here, from
  // housekeeping; a tracked instance is only peeked at and left to its pidfd, so its status
  // is never stolen. Every process usherd starts is tracked in the same turn of the loop
  // that starts it. (No SIGCHLD handler: a signal and a wait per exit would cost every
  // connection for the sake of the rare orphan.)
  std::vector<pid_t> reaped =
      activation::reap_untracked([&](pid_t pid) { return by_pid_.count(pid) > 0; });
  if (!reaped.empty()) spdlog::debug("reap orphans={}", reaped.size());
}

void Daemon::start_notify_socket() {
  std::string path = options_.runtime_dir + "/notify";
  auto fd = activation::open_notify_socket(path);
  if (!fd) {
    spdlog::error("notify socket {}: {}", path, fd.error().to_string());
    return;
  }
  notify_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd->release());
  arm_notify();
}

void Daemon::arm_notify() {
  notify_->async_wait(asio::posix::stream_descriptor::wait_read,
                      [this](const boost::system::error_code& ec) {
                        if (ec) return;
                        on_notification();
                        arm_notify();
                      });
}

Instance* Daemon::attribute_sender(pid_t sender, std::uint64_t sender_inode) {
  if (sender_inode != 0) {
    // The kernel named the sending process itself (SCM_PIDFD): the pid must still be that
    // process, or a datagram queued by one that has since been reaped would be credited to
    // whoever was given its pid next.
    auto now_there = activation::open_pidfd(sender);
    if (!now_there || activation::pidfd_inode(now_there->get()).value_or(0) != sender_inode)
      return nullptr;
  }
  if (Instance* direct = find_by_pid(sender)) {
    if (sender_inode != 0 && direct->pidfd_inode != 0 && direct->pidfd_inode != sender_inode)
      return nullptr;
    const auto access = direct->plan ? direct->plan->unit.notify_access : units::NotifyAccess::main;
    return access == units::NotifyAccess::none ? nullptr : direct;
  }
  // NotifyAccess=all: walk up from the sender to an instance's main process. Bounded, and
  // stops at pid 1 or at usherd itself.
  pid_t pid = sender;
  for (int depth = 0; depth < 32; ++depth) {
    auto parent = activation::parent_pid(pid);
    if (!parent || *parent <= 1 || *parent == getpid()) return nullptr;
    if (Instance* owner = find_by_pid(*parent)) {
      const auto access = owner->plan ? owner->plan->unit.notify_access : units::NotifyAccess::main;
      return access == units::NotifyAccess::all ? owner : nullptr;
    }
    pid = *parent;
  }
  return nullptr;
}

void Daemon::on_notification() {
  for (int i = 0; i < 64; ++i) {
    auto received = activation::receive_notification(notify_->native_handle(), fd_closer_);
    if (!received) {
      if (received.error().code == EAGAIN || received.error().code == EWOULDBLOCK) return;
      ++notify_rejected_;
      continue;
    }
    if (!*received) return;
    const activation::Notification& note = **received;
    Instance* instance =
        note.sender ? attribute_sender(note.sender->pid, note.sender_pidfd_inode) : nullptr;
    const char* problem = activation::notify_problem(note);
    if (instance == nullptr || problem != nullptr) {
      ++notify_rejected_;
      spdlog::debug("notify rejected sender_pid={} bytes={} reason={}",
                    note.sender ? note.sender->pid : 0, note.payload.size(),
                    problem ? problem : "unattributed");
      continue;
    }
    for (const auto& [key, value] : activation::parse_notify_payload(note.payload)) {
      if (key == "READY" && value == "1") {
        if (instance->state == Instance::State::running &&
            instance->role == Instance::Role::service_main)
          service_ready_again(*instance);
        else
          mark_ready(*instance, "notify", Clock::now());
      } else if (key == "STOPPING" && value == "1") {
        // Still starting, it keeps its startup slot and deadline: saying it is stopping
        // does not make an unauthenticated instance any less of one. Once ready, it is
        // deactivating and TimeoutStopSec= applies, as systemd applies it after STOPPING=1.
        if (instance->state == Instance::State::running) {
          instance->state = Instance::State::stopping;
          instance->stopping_by_itself = true;
          arm_stop_timeout(*instance);
        }
      } else if (key == "STATUS") {
        if (!instance->status_log)
          instance->status_log =
              std::make_unique<DropLog>(kStatusBurst, kStatusWindow, "status lines suppressed");
        if (instance->status_log->allow(Clock::now(), instance->socket))
          spdlog::info("status instance={} {}", instance->name, quote_untrusted(value));
      }
    }
  }
}

}  // namespace usherd::supervisor

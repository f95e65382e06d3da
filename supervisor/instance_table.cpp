#include "supervisor/instance_table.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "activation/runtime_dir.h"
#include "supervisor/convert.h"
#include "supervisor/instance_life.h"
#include "supervisor/logging.h"

namespace usherd::supervisor {
namespace {

std::int64_t boottime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

void log_end(const Instance& instance, const EndStatus& status, Clock::time_point now) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  bool was_starting = ended_before_ready(instance.state, instance.ready_via);
  std::string how;
  if (!status)
    how = "status=unknown";  // re-adopted: it was not our child, the kernel kept its status
  else if (status->signaled)
    how = fmt::format("status=killed signal={}{}", strsignal(status->code_or_signal),
                      status->core_dumped ? " core=dumped" : "");
  else
    how = fmt::format("status=exited code={}", status->code_or_signal);
  log_structured(
      spdlog::level::info,
      fmt::format("end instance={} pid={} {} {}lifetime={:.1f}s", instance.name, instance.pid, how,
                  was_starting ? "before-ready=yes " : "", seconds_between(instance.started, now)),
      instance.name, instance.socket, instance.remote_ip);
}

void prepare_runtime_directories(const ServicePlan& plan, const std::string& name) {
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

InstanceTable::InstanceTable(asio::io_context& io, std::string state_path)
    : io_(io), state_path_(std::move(state_path)) {}

InstanceTable::~InstanceTable() {
  // The exit watch's fd belongs to exit_watch_, not to its descriptor in the loop.
  if (exit_watch_io_) (void)exit_watch_io_->release();
}

Result<void> InstanceTable::start() {
  auto watch = activation::ExitWatch::create();
  if (!watch) return tl::unexpected(watch.error());
  exit_watch_.emplace(std::move(*watch));
  exit_watch_io_ = std::make_unique<asio::posix::stream_descriptor>(io_, exit_watch_->fd());
  wait_for_exits();
  return {};
}

Instance* InstanceTable::find(std::uint64_t key) {
  auto it = instances_.find(key);
  return it == instances_.end() ? nullptr : it->second.get();
}

Instance* InstanceTable::find_by_pid(pid_t pid) {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? nullptr : find(it->second);
}

Instance* InstanceTable::find_by_name(const std::string& name) {
  for (auto& [key, inst] : instances_)
    if (inst->name == name) return inst.get();
  return nullptr;
}

void InstanceTable::disown(const InstanceOwner* owner) {
  for (auto& [key, inst] : instances_)
    if (inst->owner == owner) inst->owner = nullptr;
}

Instance& InstanceTable::track(std::unique_ptr<Instance> instance) {
  instance->key = next_key_++;
  Instance& ref = *instance;
  by_pid_[ref.pid] = ref.key;
  instances_.emplace(ref.key, std::move(instance));
  watch_exit(ref);
  return ref;
}

StateEntryView InstanceTable::state_view(const Instance& instance) const {
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

void InstanceTable::persist(Instance& instance, StateFile::Event event) {
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

void InstanceTable::close_state() {
  state_file_.flush();
  if (instances_.empty()) state_file_.remove();
}

std::vector<Instance*> InstanceTable::adopt_from_state_file() {
  std::string boot = activation::boot_id().value_or("");
  state_file_.set_boot_id(boot);
  auto read = StateFile::read(state_path_, boot);
  if (!read) spdlog::warn("adopt nothing: {}", read.error().to_string());
  std::vector<StateEntry> entries = read ? std::move(*read) : std::vector<StateEntry>();
  std::vector<StateEntry> live;
  std::vector<Instance*> adopted;
  unsigned ended = 0;
  Clock::time_point now = Clock::now();
  auto wall_now = std::chrono::system_clock::now();
  std::int64_t boot_now_ms = boottime_ms();
  for (auto& e : entries) {
    // Adopted means signalled later (a startup timeout, a stop): only a process whose
    // identity is proven is taken. The pidfd's inode names one process for the life of the
    // system where pidfds live on pidfs; elsewhere the start time must match, and in every
    // case the process must lead its own session, as each process usherd starts does.
    auto pidfd = activation::open_pidfd(e.pid);
    bool same = false;
    if (pidfd && e.pidfd_inode) {
      same = activation::pidfd_inode(pidfd->get()).value_or(0) == e.pidfd_inode;
    } else if (pidfd && e.start_time) {
      auto start = activation::process_start_time(e.pid);
      same = start && *start == e.start_time;
    }
    if (same) same = activation::process_session(e.pid).value_or(0) == e.pid;
    auto zombie = activation::has_ended(e.pid);
    if (!same || !zombie || *zombie) {
      // gone, the pid now belongs to another process, or it has ended and its new parent
      // has not reaped it yet
      ++ended;
      continue;
    }
    auto inst = std::make_unique<Instance>();
    inst->name = e.name;
    inst->socket = e.socket;
    inst->pid = e.pid;
    inst->pidfd_inode = e.pidfd_inode;
    inst->start_time = e.start_time;
    inst->pidfd = std::move(*pidfd);
    inst->peer = e.peer;
    inst->remote_ip = e.peer.substr(0, e.peer.rfind(':'));
    if (!inst->remote_ip.empty() && inst->remote_ip.front() == '[')
      inst->remote_ip = inst->remote_ip.substr(1, inst->remote_ip.size() - 2);
    inst->adopted = true;
    inst->persisted = true;  // state_file_.open() below writes it
    inst->state = e.ready ? Instance::State::running : Instance::State::starting;
    inst->ready_via = e.ready ? "adopted" : nullptr;
    auto age = e.started_boot_ms > 0
                   ? std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::chrono::milliseconds(boot_now_ms - e.started_boot_ms))
                   : wall_now - std::chrono::system_clock::time_point(
                                    std::chrono::milliseconds(e.started_unix_ms));
    inst->started = now - std::chrono::duration_cast<Clock::duration>(age);
    inst->started_wall =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(e.started_unix_ms));
    adopted.push_back(&track(std::move(inst)));
    live.push_back(e);
  }
  if (!entries.empty()) {
    spdlog::warn(
        "adopt instances={} from {}; {} ended while usherd was not running (their exit "
        "statuses are unknown and no penalty was applied)",
        live.size(), state_path_, ended);
  }
  if (auto r = state_file_.open(state_path_, live); !r)
    spdlog::warn("state file {}: {}; instances will not be re-adopted after a crash", state_path_,
                 r.error().to_string());
  return adopted;
}

void InstanceTable::watch_exit(Instance& instance) {
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
  unwatched_.push_back(instance.key);
}

void InstanceTable::wait_for_exits() {
  exit_watch_io_->async_wait(asio::posix::stream_descriptor::wait_read,
                             [this](const boost::system::error_code& ec) {
                               if (ec) return;
                               // Every report waiting is taken here, a batch at a time. A key no
                               // longer tracked (its pidfd lived on in a child for a moment after
                               // its close) is passed over.
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

void InstanceTable::on_exit(std::uint64_t key) {
  Instance* found = find(key);
  if (found == nullptr) return;
  if (found->state == Instance::State::starting && hooks_.before_reap) {
    // A fast instance's READY=1 (or ready-log record) can still be queued when its exit is
    // seen: read it first, while the pid is unreaped and still names the instance, or a
    // successful login would count as ending before ready and earn its source a penalty.
    hooks_.before_reap(*found);
    found = find(key);
    if (found == nullptr) return;
  }
  Instance& instance = *found;
  Clock::time_point now = Clock::now();
  EndStatus status;
  if (!instance.adopted) {
    auto reaped = activation::try_reap(instance.pidfd.get());
    if (reaped && !*reaped) {
      watch_exit(instance);  // readable but not yet reapable: wait again
      return;
    }
    if (reaped) status = **reaped;
  }
  if (instance.owner != nullptr)
    instance.owner->instance_ended(instance, status, now);
  else
    log_end(instance, status, now);
  persist(instance, StateFile::Event::ended);
  if (hooks_.before_forget) hooks_.before_forget(instance);
  if (instance.status_log) instance.status_log->finish(instance.socket);
  std::shared_ptr<ServicePlan> plan = instance.plan;
  by_pid_.erase(instance.pid);
  instances_.erase(key);
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
    for (const auto& [k, inst] : instances_) {
      if (inst->role == Instance::Role::service_helper) continue;
      StateEntryView v = state_view(*inst);
      entries.push_back(StateEntry{v.pid, v.pidfd_inode, v.start_time, v.started_unix_ms,
                                   v.started_boot_ms, v.ready, std::string(v.socket),
                                   std::string(v.name), std::string(v.peer)});
    }
    if (auto r = state_file_.open(state_path_, entries); !r)
      spdlog::warn("state file: {}", r.error().to_string());
  }
  if (hooks_.after_end) hooks_.after_end();
}

void InstanceTable::arm_timer(Instance& instance, Clock::duration after,
                              std::function<void(Instance&)> on_expiry) {
  // One timer per instance (startup deadline, stop deadline, SIGKILL escalation). The
  // instance is looked up by key when it fires, since it may have ended meanwhile.
  if (!instance.timer) instance.timer = std::make_unique<asio::steady_timer>(io_);
  instance.timer->expires_after(after);
  std::uint64_t key = instance.key;
  instance.timer->async_wait(
      [this, key, on_expiry = std::move(on_expiry)](const boost::system::error_code& ec) {
        if (ec) return;
        if (Instance* inst = find(key)) on_expiry(*inst);
      });
}

units::Duration InstanceTable::timeout_stop_of(const Instance& instance) {
  return instance.plan ? instance.plan->unit.timeout_stop : std::chrono::seconds(90);
}

void InstanceTable::stop_as_unit_says(Instance& instance) {
  int signal = instance.plan ? instance.plan->unit.kill_signal : SIGTERM;
  stop(instance, signal, to_timer_duration(timeout_stop_of(instance)));
}

void InstanceTable::stop(Instance& instance, int signal, Clock::duration escalate_after,
                         bool signalled) {
  instance.stopping_by_itself = false;
  instance.state = next_step(instance.state, LifeEvent::stop_requested).state;
  if (!signalled) {
    if (auto r = activation::send_signal(instance.pidfd.get(), signal); !r) return;
  }
  // A stopped process group leader would not act on SIGTERM; systemd sends SIGCONT too.
  (void)activation::send_signal(instance.pidfd.get(), SIGCONT);
  arm_timer(instance, escalate_after, [](Instance& inst) {
    spdlog::warn("kill instance={} pid={} did not stop: SIGKILL", inst.name, inst.pid);
    (void)activation::send_signal(inst.pidfd.get(), SIGKILL);
  });
}

void InstanceTable::housekeeping() {
  // Orphans re-parented to usherd (it is a child subreaper) are reaped here; a tracked
  // instance is only peeked at and left to its pidfd, so its status is never stolen. Every
  // process usherd starts is tracked in the same turn of the loop that starts it. (No
  // SIGCHLD handler: a signal and a wait per exit would cost every connection for the sake
  // of the rare orphan.)
  std::vector<pid_t> reaped =
      activation::reap_untracked([&](pid_t pid) { return by_pid_.count(pid) > 0; });
  if (!reaped.empty()) spdlog::debug("reap orphans={}", reaped.size());
  // Taken off the list before on_exit: an instance not yet reapable goes back through
  // watch_exit (to the exit watch, or to this list if that fails again).
  std::vector<std::uint64_t> keys;
  keys.swap(unwatched_);
  for (std::uint64_t key : keys) {
    Instance* inst = find(key);
    if (inst == nullptr) continue;
    struct pollfd p {
      inst->pidfd.get(), POLLIN, 0
    };
    if (::poll(&p, 1, 0) == 1)
      on_exit(key);
    else
      unwatched_.push_back(key);
  }
}

}  // namespace usherd::supervisor

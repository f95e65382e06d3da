// Parent side of the spawn (see spawn.h). Owns the preparation, the signal blocking around
// clone, the child stack and the translation of a child failure into an Error.
#include "activation/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/futex.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>

#include "activation/spawn_child.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace usherd::activation {
namespace {

// A child's stack: mmap'd once per thread for spawn() and once per Launcher slot, with a guard
// page below it. 256 KiB is far more than the child uses (a 4 KiB getdents64 buffer at most)
// and costs nothing until touched.
class ChildStack {
 public:
  static constexpr std::size_t kSize = 256 * 1024;
  static constexpr std::size_t kGuard = 4096;

  ~ChildStack() {
    if (base_ != MAP_FAILED) munmap(base_, kSize + kGuard);
  }

  /// The 16-byte aligned top of the stack (stacks grow down on every Linux target we run on).
  Result<void*> top() {
    if (base_ == MAP_FAILED) {
      base_ = mmap(nullptr, kSize + kGuard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (base_ == MAP_FAILED) return fail_errno("mmap child stack");
      if (mprotect(base_, kGuard, PROT_NONE) != 0) {
        int err = errno;
        munmap(base_, kSize + kGuard);
        base_ = MAP_FAILED;
        return fail("mprotect child stack guard", err);
      }
    }
    auto top = reinterpret_cast<std::uintptr_t>(base_) + kSize + kGuard;
    return reinterpret_cast<void*>(top & ~static_cast<std::uintptr_t>(15));
  }

 private:
  void* base_ = MAP_FAILED;
};

thread_local ChildStack child_stack;

// Bit (signal - 1) set: the child resets that signal. All until note_signal_dispositions().
std::atomic<std::uint64_t> g_reset_signals{~std::uint64_t{0}};

std::string failure_message(const SpawnPlan& plan, ChildStage stage) {
  std::string word = to_string(stage);
  switch (stage) {
    case ChildStage::exec:
      return word + " " + plan.path;
    case ChildStage::chdir:
      return word + " " + (plan.working_directory.empty() ? "/" : plan.working_directory);
    case ChildStage::chroot:
      return word + " " + plan.root_directory;
    case ChildStage::setuid:
      return word + " " + (plan.credentials ? std::to_string(plan.credentials->uid) : "");
    case ChildStage::setgid:
    case ChildStage::setgroups:
      return word + " " + (plan.credentials ? std::to_string(plan.credentials->gid) : "");
    case ChildStage::nice:
      return word + " " + std::to_string(plan.nice.value_or(0));
    default:
      return word;
  }
}

// check_sources: each source fd is looked at (one fcntl each) so a stale one is an error
// here, not a child that fails at its "fds" stage. launch() skips it: its callers pass fds
// they have just opened, and a child's failure is reported all the same when it ends.
Result<void> validate(const SpawnPlan& plan, bool check_sources) {
  if (plan.path.empty()) return fail("spawn: empty executable path", EINVAL);
  std::set<int> targets;
  for (const auto& m : plan.fds) {
    if (m.target < 0 || m.source < 0) return fail("spawn: negative fd in mapping", EBADF);
    if (!targets.insert(m.target).second)
      return fail("spawn: fd " + std::to_string(m.target) + " mapped twice", EINVAL);
    if (check_sources && fcntl(m.source, F_GETFD) < 0)
      return fail_errno("spawn: source fd " + std::to_string(m.source));
  }
  for (int fd : plan.clear_nonblock)
    if (!targets.count(fd))
      return fail("spawn: clear_nonblock names unmapped fd " + std::to_string(fd), EINVAL);
  return {};
}

}  // namespace

void note_signal_dispositions() {
  // The raw call: glibc's sigaction() refuses to show its internal signals (32, 33), which
  // it only catches once a program cancels a thread or changes ids with several threads.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    std::uint64_t mask;
  } current{};
  std::uint64_t mask = 0;
  for (int sig = 1; sig <= 64; ++sig) {
    if (syscall(SYS_rt_sigaction, sig, nullptr, &current, sizeof(std::uint64_t)) != 0 ||
        current.handler != SIG_DFL)
      mask |= std::uint64_t{1} << (sig - 1);
  }
  g_reset_signals.store(mask, std::memory_order_relaxed);
}

void forget_signal_dispositions() {
  g_reset_signals.store(~std::uint64_t{0}, std::memory_order_relaxed);
}

RLimit default_nofile_limit(rlim_t inherited_hard) {
  rlim_t hard = std::min<rlim_t>(inherited_hard, kDefaultNofileHardMax);
  return {RLIMIT_NOFILE, std::min<rlim_t>(kDefaultNofileSoft, hard), hard};
}

namespace {

// argv, envp and the rest of a ChildPlan built from a SpawnPlan; the strings stay owned by
// the plan (and by listen_pid_slot), which must outlive the child's use of them (its execve
// or _exit). Not movable: child points into the members.
struct PreparedChild {
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string listen_pid_slot;
  std::vector<ChildFdMove> fds;
  std::vector<int> temp_fds;
  std::vector<ChildRLimit> rlimits;
  ChildPlan child;

  PreparedChild() = default;
  PreparedChild(const PreparedChild&) = delete;
  PreparedChild& operator=(const PreparedChild&) = delete;

  void prepare(const SpawnPlan& plan, ChildFailure* failure) {
    argv.clear();
    envp.clear();
    fds.clear();
    if (plan.argv.empty()) argv.push_back(const_cast<char*>(plan.path.c_str()));
    for (const auto& arg : plan.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    listen_pid_slot.assign("LISTEN_PID=");
    listen_pid_slot.append(24, '\0');
    for (const auto& entry : plan.env) {
      if (plan.set_listen_pid && entry.rfind("LISTEN_PID=", 0) == 0) continue;
      envp.push_back(const_cast<char*>(entry.c_str()));
    }
    if (plan.set_listen_pid) envp.push_back(listen_pid_slot.data());
    envp.push_back(nullptr);
    for (const auto& m : plan.fds) fds.push_back({m.source, m.target});
    temp_fds.assign(fds.size(), -1);
    rlimits.clear();
    bool has_nofile = false;
    for (const auto& lim : plan.rlimits) {
      rlimits.push_back({lim.resource, lim.soft, lim.hard});
      if (lim.resource == RLIMIT_NOFILE) has_nofile = true;
    }

    child = ChildPlan{};
    child.path = plan.path.c_str();
    child.argv = argv.data();
    child.envp = envp.data();
    child.listen_pid_digits = plan.set_listen_pid ? listen_pid_slot.data() + 11 : nullptr;
    child.fds = fds.data();
    child.fd_count = fds.size();
    child.temp_fds = temp_fds.data();
    child.clear_nonblock = plan.clear_nonblock.data();
    child.clear_nonblock_count = plan.clear_nonblock.size();
    child.rlimits = rlimits.data();
    child.rlimit_count = rlimits.size();
    child.default_nofile = !has_nofile;
    child.nofile_soft = kDefaultNofileSoft;
    child.nofile_hard_max = kDefaultNofileHardMax;
    child.set_nice = plan.nice.has_value();
    child.nice = plan.nice.value_or(0);
    child.root_directory = plan.root_directory.c_str();
    if (plan.credentials) {
      child.set_credentials = true;
      child.set_groups = geteuid() == 0;
      child.uid = plan.credentials->uid;
      child.gid = plan.credentials->gid;
      child.groups = plan.credentials->groups.data();
      child.group_count = plan.credentials->groups.size();
    }
    child.working_directory = plan.working_directory.c_str();
    child.working_directory_optional = plan.working_directory_optional;
    child.umask = plan.umask;
    child.no_new_privileges = plan.no_new_privileges;
    child.reset_signals = g_reset_signals.load(std::memory_order_relaxed);
    child.failure = failure;
  }
};

// clone() with every signal blocked (the raw call: glibc's sigprocmask keeps its internal
// ones open), so no handler of ours runs in the child on shared memory before it resets
// dispositions. child_tid, if given, is cleared by the kernel when the child leaves this
// memory (CLONE_CHILD_CLEARTID: at its execve, or its exit if it never gets there).
Result<SpawnedProcess> clone_child(int (*entry)(void*), void* arg, void* stack_top, int flags,
                                   pid_t* child_tid) {
  std::uint64_t all = ~0ULL;
  std::uint64_t old = 0;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all) != 0)
    return fail_errno("spawn: block signals");
  int pidfd = -1;
  pid_t pid = clone(entry, stack_top, flags | CLONE_VM | CLONE_PIDFD | SIGCHLD, arg, &pidfd,
                    nullptr, child_tid);
  int clone_errno = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof old);
  if (pid < 0) return fail("spawn: clone", clone_errno);
  return SpawnedProcess{pid, UniqueFd(pidfd)};
}

}  // namespace

Result<SpawnedProcess> spawn(const SpawnPlan& plan) {
  if (auto ok = validate(plan, true); !ok) return tl::unexpected(ok.error());
  ChildFailure failure;
  PreparedChild prepared;
  prepared.prepare(plan, &failure);
  auto stack_top = child_stack.top();
  if (!stack_top) return tl::unexpected(stack_top.error());
  auto spawned = clone_child(run_spawn_child, &prepared.child, *stack_top, CLONE_VFORK, nullptr);
  if (!spawned) return spawned;
  if (failure.stage != ChildStage::none) {
    // The child has _exit(127)ed (CLONE_VFORK returned); reap it through its pidfd so no
    // zombie remains and no other waiter can be confused by it.
    siginfo_t info{};
    while (waitid(static_cast<idtype_t>(P_PIDFD), spawned->pidfd.get(), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
    return fail(failure_message(plan, failure.stage), failure.error);
  }
  return spawned;
}

// One child between clone and execve: the plan it reads, its stack, the word the kernel
// clears when it leaves usherd's memory, and where it reports a failure.
struct Launcher::Slot {
  SpawnPlan plan;
  PreparedChild prepared;
  ChildFailure failure;
  ChildStack stack;
  alignas(8) pid_t word = 0;  ///< the child's tid until it execs or exits, then 0
  pid_t pid = 0;
  std::uint64_t group = 0;                           ///< the caller's tag, from launch()
  std::chrono::steady_clock::time_point launched{};  ///< when launch() started it

  bool busy() const { return __atomic_load_n(&word, __ATOMIC_ACQUIRE) != 0; }
};

Launcher::Launcher(std::size_t max_starting) : max_starting_(max_starting) {}

Launcher::~Launcher() {
  // A child still before its execve runs on a slot's stack and reads its plan: wait for it
  // (the kernel wakes the futex when it clears the word), a bounded time. One that does not
  // get there (an exec stuck on a dead file system) keeps its slot: the memory is let go
  // of rather than pulled from under it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto wait_out = [&](std::unique_ptr<Slot>& slot) {
    while (slot->busy()) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) break;
      struct timespec ts {};
      ts.tv_nsec = 10'000'000;
      pid_t seen = __atomic_load_n(&slot->word, __ATOMIC_ACQUIRE);
      if (seen != 0) syscall(SYS_futex, &slot->word, FUTEX_WAIT, seen, &ts, nullptr, 0);
    }
    if (slot->busy()) (void)slot.release();  // leaked on purpose, see above
  };
  for (auto& slot : busy_) wait_out(slot);
}

std::unique_ptr<Launcher::Slot> Launcher::take_slot() {
  if (free_.empty()) return std::make_unique<Slot>();
  std::unique_ptr<Slot> slot = std::move(free_.back());
  free_.pop_back();
  return slot;
}

void Launcher::collect() {
  for (std::size_t i = 0; i < busy_.size();) {
    Slot& slot = *busy_[i];
    if (slot.busy()) {
      ++i;
      continue;
    }
    if (slot.failure.stage != ChildStage::none)
      failures_.emplace(slot.pid,
                        Error{slot.failure.error, failure_message(slot.plan, slot.failure.stage)});
    slot.plan = SpawnPlan{};  // its fds and strings are no longer needed
    free_.push_back(std::move(busy_[i]));
    busy_[i] = std::move(busy_.back());
    busy_.pop_back();
  }
}

Result<SpawnedProcess> Launcher::launch(SpawnPlan&& plan, std::uint64_t group,
                                        Clock::time_point now) {
  if (auto ok = validate(plan, false); !ok) return tl::unexpected(ok.error());
  collect();
  if (busy_.size() >= max_starting_)
    return fail("spawn: " + std::to_string(busy_.size()) +
                    " processes still starting (none has reached execve)",
                EAGAIN);
  std::unique_ptr<Slot> slot = take_slot();
  slot->group = group;
  slot->launched = now;
  slot->plan = std::move(plan);
  slot->failure = ChildFailure{};
  slot->prepared.prepare(slot->plan, &slot->failure);
  auto stack_top = slot->stack.top();
  if (!stack_top) {
    free_.push_back(std::move(slot));
    return tl::unexpected(stack_top.error());
  }
  // Non-zero before the clone: the kernel only ever clears it.
  __atomic_store_n(&slot->word, -1, __ATOMIC_RELEASE);
  auto spawned = clone_child(run_spawn_child, &slot->prepared.child, *stack_top,
                             CLONE_CHILD_CLEARTID, &slot->word);
  if (!spawned) {
    __atomic_store_n(&slot->word, 0, __ATOMIC_RELEASE);
    free_.push_back(std::move(slot));
    return spawned;
  }
  slot->pid = spawned->pid;
  busy_.push_back(std::move(slot));
  return spawned;
}

std::optional<Error> Launcher::take_failure(pid_t pid) {
  collect();
  auto it = failures_.find(pid);
  if (it == failures_.end()) return std::nullopt;
  Error error = std::move(it->second);
  failures_.erase(it);
  return error;
}

std::size_t Launcher::starting() {
  collect();
  return busy_.size();
}

std::size_t Launcher::starting_since(Clock::time_point since) {
  collect();
  std::size_t n = 0;
  for (const auto& slot : busy_)
    if (slot->launched >= since) ++n;
  return n;
}

std::vector<Launcher::Stalled> Launcher::launched_before(Clock::time_point since) {
  collect();
  std::vector<Stalled> out;
  for (const auto& slot : busy_)
    if (slot->launched < since) out.push_back({slot->pid, slot->group, slot->launched});
  return out;
}

}  // namespace usherd::activation

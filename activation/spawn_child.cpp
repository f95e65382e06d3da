// The child side of the spawn (see spawn_child.h for what it may call and why).
//
// Order, as systemd's exec-invoke and dinit's run-child-proc do it: reset signal dispositions
// while every signal is still blocked (the parent blocked them around clone, so no handler of
// the parent can run on this shared memory); put the passed fds in place and close everything
// else; new session; resource limits; nice; chroot; groups, gid, uid; working directory (as
// the new user, so permissions are those of the service); umask; no_new_privs; LISTEN_PID;
// empty signal mask; execve. This file is built without sanitizers and without a stack
// protector (activation/CMakeLists.txt) and the functions say so as well.
#include "activation/spawn_child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#define USHERD_CHILD_FN __attribute__((no_sanitize("address", "undefined"), no_stack_protector))

namespace usherd::activation {

const char* to_string(ChildStage stage) {
  switch (stage) {
    case ChildStage::none:
      return "none";
    case ChildStage::signals:
      return "signals";
    case ChildStage::fds:
      return "fds";
    case ChildStage::nonblock:
      return "nonblock";
    case ChildStage::close_fds:
      return "close-fds";
    case ChildStage::setsid:
      return "setsid";
    case ChildStage::setrlimit:
      return "setrlimit";
    case ChildStage::nice:
      return "nice";
    case ChildStage::chroot:
      return "chroot";
    case ChildStage::setgroups:
      return "setgroups";
    case ChildStage::setgid:
      return "setgid";
    case ChildStage::setuid:
      return "setuid";
    case ChildStage::chdir:
      return "chdir";
    case ChildStage::no_new_privileges:
      return "no-new-privileges";
    case ChildStage::exec:
      return "exec";
  }
  return "unknown";
}

namespace {

// The kernel's struct sigaction for rt_sigaction(2) (x86-64/aarch64 layout: handler, flags,
// restorer, mask); glibc's sigaction() refuses its own internal signals 32 and 33.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};

constexpr int kKernelNsig = 64;

// System calls without errno. A child started without CLONE_VFORK (Launcher) runs at the
// same time as the parent thread whose TLS it shares, so glibc's syscall(2), which stores
// errno there, would clobber the parent's errno between one of its failing calls and the
// read. This returns the kernel's value: -errno on failure.
USHERD_CHILD_FN inline long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0,
                                long e = 0) {
  long ret;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  ret = x0;
#else
#error "spawn_child.cpp: raw system calls are written for x86-64 and aarch64"
#endif
  return ret;
}

// The errno of a failed call: the kernel returns -4095..-1.
USHERD_CHILD_FN inline bool failed(long ret) {
  return ret < 0 && ret > -4096;
}

[[noreturn]] USHERD_CHILD_FN void fail_child(ChildPlan* plan, ChildStage stage, long ret) {
  plan->failure->error = static_cast<int>(-ret);
  // The stage last: a parent that sees it set sees the error too.
  __atomic_store_n(reinterpret_cast<int*>(&plan->failure->stage), static_cast<int>(stage),
                   __ATOMIC_RELEASE);
  for (;;) sys(SYS_exit_group, 127);
}

USHERD_CHILD_FN void reset_signal_dispositions(std::uint64_t signals) {
  KernelSigaction dfl{};
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig <= kKernelNsig; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if ((signals & (std::uint64_t{1} << (sig - 1))) == 0) continue;  // default already
    // EINVAL for signals the kernel does not allow to change: nothing to reset there.
    sys(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, sizeof(std::uint64_t));
  }
}

// The inherited RLIMIT_NOFILE (before our own limits): its soft limit bounds the last closing
// fallback, its hard limit caps the default one.
USHERD_CHILD_FN struct rlimit inherited_nofile() {
  struct rlimit lim {};
  if (sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, reinterpret_cast<long>(&lim)) != 0) {
    lim.rlim_cur = 1024 * 1024;
    lim.rlim_max = RLIM_INFINITY;
  }
  return lim;
}

USHERD_CHILD_FN bool is_kept(const ChildPlan* plan, int fd) {
  for (std::size_t i = 0; i < plan->fd_count; ++i)
    if (plan->fds[i].target == fd) return true;
  return false;
}

USHERD_CHILD_FN int parse_fd_name(const char* name) {
  if (*name == '\0') return -1;
  long value = 0;
  for (const char* p = name; *p; ++p) {
    if (*p < '0' || *p > '9') return -1;
    value = value * 10 + (*p - '0');
    if (value > 0x7fffffff) return -1;
  }
  return static_cast<int>(value);
}

// Closes every fd >= first. close_range(2) first (Linux 5.9); then /proc/self/fd read with
// getdents64 (no opendir: it allocates); then a loop bounded by the soft limit, which is the
// 12-minute path under a limit of 2^30 and therefore only the last resort. Returns 0 or the
// kernel's -errno.
USHERD_CHILD_FN long close_from(int first, rlim_t inherited_soft) {
  if (sys(SYS_close_range, first, ~0U, 0) == 0) return 0;
  long dir = sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/fd"),
                 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!failed(dir)) {
    alignas(8) char buffer[4096];
    for (;;) {
      long n = sys(SYS_getdents64, dir, reinterpret_cast<long>(buffer), sizeof buffer);
      if (failed(n)) {
        sys(SYS_close, dir);
        return n;
      }
      if (n == 0) break;
      for (long off = 0; off < n;) {
        auto* entry = reinterpret_cast<struct dirent64*>(buffer + off);
        off += entry->d_reclen;
        int fd = parse_fd_name(entry->d_name);
        if (fd >= first && fd != dir) sys(SYS_close, fd);
      }
    }
    sys(SYS_close, dir);
    return 0;
  }
  for (rlim_t fd = static_cast<rlim_t>(first); fd < inherited_soft && fd < 0x7fffffff; ++fd)
    sys(SYS_close, static_cast<long>(fd));
  return 0;
}

USHERD_CHILD_FN void place_fds(ChildPlan* plan, rlim_t inherited_soft) {
  int highest = -1;
  for (std::size_t i = 0; i < plan->fd_count; ++i)
    if (plan->fds[i].target > highest) highest = plan->fds[i].target;
  // A source at or below the highest target could be overwritten by a dup3 below before its
  // own mapping is done (or is its own target, which dup3 refuses): it is first moved above
  // the highest target, once however many targets it feeds. Sources already above (an
  // accepted connection, usherd's /dev/null) are used as they are. What was moved is closed
  // with everything else above the targets.
  for (std::size_t i = 0; i < plan->fd_count; ++i) {
    int source = plan->fds[i].source;
    plan->temp_fds[i] = source;
    if (source > highest) continue;
    std::size_t same = 0;
    while (same < i && plan->fds[same].source != source) ++same;
    if (same < i) {
      plan->temp_fds[i] = plan->temp_fds[same];
      continue;
    }
    long moved = sys(SYS_fcntl, source, F_DUPFD, highest + 1);
    if (failed(moved)) fail_child(plan, ChildStage::fds, moved);
    plan->temp_fds[i] = static_cast<int>(moved);
  }
  for (std::size_t i = 0; i < plan->fd_count; ++i) {
    // dup3 without O_CLOEXEC: the target survives execve.
    long r = sys(SYS_dup3, plan->temp_fds[i], plan->fds[i].target, 0);
    if (failed(r)) fail_child(plan, ChildStage::fds, r);
  }
  for (std::size_t i = 0; i < plan->clear_nonblock_count; ++i) {
    int fd = plan->clear_nonblock[i];
    long flags = sys(SYS_fcntl, fd, F_GETFL);
    if (failed(flags)) fail_child(plan, ChildStage::nonblock, flags);
    // Targets fed by one source share its open file: once cleared, the others see it so.
    if ((flags & O_NONBLOCK) == 0) continue;
    long r = sys(SYS_fcntl, fd, F_SETFL, flags & ~static_cast<long>(O_NONBLOCK));
    if (failed(r)) fail_child(plan, ChildStage::nonblock, r);
  }
  for (int fd = 0; fd < highest; ++fd)
    if (!is_kept(plan, fd)) sys(SYS_close, fd);
  if (long r = close_from(highest + 1, inherited_soft); failed(r))
    fail_child(plan, ChildStage::close_fds, r);
}

USHERD_CHILD_FN void write_listen_pid(char* digits) {
  long pid = sys(SYS_getpid);
  char reversed[24];
  int n = 0;
  do {
    reversed[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0 && n < 20);
  for (int i = 0; i < n; ++i) digits[i] = reversed[n - 1 - i];
  digits[n] = '\0';
}

// Runs one step; a failure ends the child with that stage.
#define USHERD_CHILD_STEP(stage, call)                               \
  do {                                                               \
    long step_result = (call);                                       \
    if (failed(step_result)) fail_child(plan, (stage), step_result); \
  } while (0)

// Everything after the fds are in place and the session exists: limits, nice, chroot,
// credentials, working directory, umask, no_new_privs, LISTEN_PID, the signal mask, execve.
[[noreturn]] USHERD_CHILD_FN void finish_child(ChildPlan* plan, struct rlimit inherited) {
  for (std::size_t i = 0; i < plan->rlimit_count; ++i) {
    struct rlimit lim {
      plan->rlimits[i].soft, plan->rlimits[i].hard
    };
    USHERD_CHILD_STEP(ChildStage::setrlimit, sys(SYS_prlimit64, 0, plan->rlimits[i].resource,
                                                 reinterpret_cast<long>(&lim), 0));
  }
  if (plan->default_nofile) {
    struct rlimit lim {};
    lim.rlim_max =
        inherited.rlim_max < plan->nofile_hard_max ? inherited.rlim_max : plan->nofile_hard_max;
    lim.rlim_cur = plan->nofile_soft < lim.rlim_max ? plan->nofile_soft : lim.rlim_max;
    USHERD_CHILD_STEP(ChildStage::setrlimit,
                      sys(SYS_prlimit64, 0, RLIMIT_NOFILE, reinterpret_cast<long>(&lim), 0));
  }

  // Nice= is absolute, as in systemd; set before dropping privileges (lowering needs them).
  if (plan->set_nice)
    USHERD_CHILD_STEP(ChildStage::nice, sys(SYS_setpriority, PRIO_PROCESS, 0, plan->nice));

  if (plan->root_directory && plan->root_directory[0] != '\0') {
    USHERD_CHILD_STEP(ChildStage::chroot,
                      sys(SYS_chroot, reinterpret_cast<long>(plan->root_directory)));
    if (!plan->working_directory || plan->working_directory[0] == '\0')
      USHERD_CHILD_STEP(ChildStage::chdir, sys(SYS_chdir, reinterpret_cast<long>("/")));
  }

  if (plan->set_credentials) {
    if (plan->set_groups)
      USHERD_CHILD_STEP(ChildStage::setgroups,
                        sys(SYS_setgroups, static_cast<long>(plan->group_count),
                            reinterpret_cast<long>(plan->group_count ? plan->groups : nullptr)));
    USHERD_CHILD_STEP(ChildStage::setgid, sys(SYS_setresgid, plan->gid, plan->gid, plan->gid));
    USHERD_CHILD_STEP(ChildStage::setuid, sys(SYS_setresuid, plan->uid, plan->uid, plan->uid));
  }

  if (plan->working_directory && plan->working_directory[0] != '\0') {
    long r = sys(SYS_chdir, reinterpret_cast<long>(plan->working_directory));
    if (failed(r) && !plan->working_directory_optional) fail_child(plan, ChildStage::chdir, r);
  }

  sys(SYS_umask, plan->umask);

  if (plan->no_new_privileges)
    USHERD_CHILD_STEP(ChildStage::no_new_privileges,
                      sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));

  if (plan->listen_pid_digits) write_listen_pid(plan->listen_pid_digits);

  // The mask survives execve; the service starts with nothing blocked (sd_listen_fds(3) and
  // every daemon assume so). A signal arriving now acts by default: our handlers are gone.
  std::uint64_t empty = 0;
  USHERD_CHILD_STEP(ChildStage::signals, sys(SYS_rt_sigprocmask, SIG_SETMASK,
                                             reinterpret_cast<long>(&empty), 0, sizeof empty));

  long r = sys(SYS_execve, reinterpret_cast<long>(plan->path), reinterpret_cast<long>(plan->argv),
               reinterpret_cast<long>(plan->envp));
  fail_child(plan, ChildStage::exec, r);
}

}  // namespace

USHERD_CHILD_FN int run_spawn_child(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);

  reset_signal_dispositions(plan->reset_signals);
  struct rlimit inherited = inherited_nofile();
  place_fds(plan, inherited.rlim_cur);

  USHERD_CHILD_STEP(ChildStage::setsid, sys(SYS_setsid));
  finish_child(plan, inherited);
}

}  // namespace usherd::activation

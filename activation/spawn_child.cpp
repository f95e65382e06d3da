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
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
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

[[noreturn]] USHERD_CHILD_FN void fail_child(ChildPlan* plan, ChildStage stage, int error) {
  plan->failure->stage = stage;
  plan->failure->error = error;
  _exit(127);
}

USHERD_CHILD_FN void reset_signal_dispositions(std::uint64_t signals) {
  KernelSigaction dfl{};
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig <= kKernelNsig; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if ((signals & (std::uint64_t{1} << (sig - 1))) == 0) continue;  // default already
    // EINVAL for signals the kernel does not allow to change: nothing to reset there.
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(std::uint64_t));
  }
}

// Returns the inherited soft RLIMIT_NOFILE (before our own limits), the bound of the last
// closing fallback.
USHERD_CHILD_FN rlim_t current_nofile_soft() {
  struct rlimit lim {};
  if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &lim) != 0) return 1024 * 1024;
  return lim.rlim_cur;
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
// 12-minute path under a limit of 2^30 and therefore only the last resort.
USHERD_CHILD_FN int close_from(int first, rlim_t inherited_soft) {
  if (syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return 0;
  int dir = static_cast<int>(
      syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir >= 0) {
    alignas(8) char buffer[4096];
    for (;;) {
      long n = syscall(SYS_getdents64, dir, buffer, sizeof buffer);
      if (n < 0) {
        syscall(SYS_close, dir);
        return errno;
      }
      if (n == 0) break;
      for (long off = 0; off < n;) {
        auto* entry = reinterpret_cast<struct dirent64*>(buffer + off);
        off += entry->d_reclen;
        int fd = parse_fd_name(entry->d_name);
        if (fd >= first && fd != dir) syscall(SYS_close, fd);
      }
    }
    syscall(SYS_close, dir);
    return 0;
  }
  for (rlim_t fd = static_cast<rlim_t>(first); fd < inherited_soft && fd < 0x7fffffff; ++fd)
    syscall(SYS_close, static_cast<int>(fd));
  return 0;
}

USHERD_CHILD_FN void place_fds(ChildPlan* plan) {
  int highest = -1;
  for (std::size_t i = 0; i < plan->fd_count; ++i)
    if (plan->fds[i].target > highest) highest = plan->fds[i].target;
  // Move every source above the highest target first, so no dup2 below overwrites a source
  // that a later mapping still needs.
  for (std::size_t i = 0; i < plan->fd_count; ++i) {
    int moved = static_cast<int>(syscall(SYS_fcntl, plan->fds[i].source, F_DUPFD, highest + 1));
    if (moved < 0) fail_child(plan, ChildStage::fds, errno);
    plan->temp_fds[i] = moved;
  }
  for (std::size_t i = 0; i < plan->fd_count; ++i) {
    // dup3 without O_CLOEXEC: the target survives execve.
    if (syscall(SYS_dup3, plan->temp_fds[i], plan->fds[i].target, 0) < 0)
      fail_child(plan, ChildStage::fds, errno);
  }
  for (std::size_t i = 0; i < plan->clear_nonblock_count; ++i) {
    int fd = plan->clear_nonblock[i];
    long flags = syscall(SYS_fcntl, fd, F_GETFL);
    if (flags < 0 || syscall(SYS_fcntl, fd, F_SETFL, flags & ~static_cast<long>(O_NONBLOCK)) < 0)
      fail_child(plan, ChildStage::nonblock, errno);
  }
  rlim_t inherited_soft = current_nofile_soft();
  for (int fd = 0; fd < highest; ++fd)
    if (!is_kept(plan, fd)) syscall(SYS_close, fd);
  if (int err = close_from(highest + 1, inherited_soft); err != 0)
    fail_child(plan, ChildStage::close_fds, err);
}

USHERD_CHILD_FN void write_listen_pid(char* digits) {
  long pid = syscall(SYS_getpid);
  char reversed[24];
  int n = 0;
  do {
    reversed[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0 && n < 20);
  for (int i = 0; i < n; ++i) digits[i] = reversed[n - 1 - i];
  digits[n] = '\0';
}

}  // namespace

USHERD_CHILD_FN int run_spawn_child(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);

  reset_signal_dispositions(plan->reset_signals);
  place_fds(plan);

  if (syscall(SYS_setsid) < 0) fail_child(plan, ChildStage::setsid, errno);

  for (std::size_t i = 0; i < plan->rlimit_count; ++i) {
    struct rlimit lim {
      plan->rlimits[i].soft, plan->rlimits[i].hard
    };
    if (syscall(SYS_prlimit64, 0, plan->rlimits[i].resource, &lim, nullptr) != 0)
      fail_child(plan, ChildStage::setrlimit, errno);
  }

  // Nice= is absolute, as in systemd; set before dropping privileges (lowering needs them).
  if (plan->set_nice && syscall(SYS_setpriority, PRIO_PROCESS, 0, plan->nice) != 0)
    fail_child(plan, ChildStage::nice, errno);

  if (plan->root_directory && plan->root_directory[0] != '\0') {
    if (syscall(SYS_chroot, plan->root_directory) != 0) fail_child(plan, ChildStage::chroot, errno);
    if (!plan->working_directory || plan->working_directory[0] == '\0') {
      if (syscall(SYS_chdir, "/") != 0) fail_child(plan, ChildStage::chdir, errno);
    }
  }

  if (plan->set_credentials) {
    if (plan->set_groups &&
        syscall(SYS_setgroups, plan->group_count, plan->group_count ? plan->groups : nullptr) != 0)
      fail_child(plan, ChildStage::setgroups, errno);
    if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) != 0)
      fail_child(plan, ChildStage::setgid, errno);
    if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) != 0)
      fail_child(plan, ChildStage::setuid, errno);
  }

  if (plan->working_directory && plan->working_directory[0] != '\0') {
    if (syscall(SYS_chdir, plan->working_directory) != 0 && !plan->working_directory_optional)
      fail_child(plan, ChildStage::chdir, errno);
  }

  syscall(SYS_umask, plan->umask);

  if (plan->no_new_privileges && syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    fail_child(plan, ChildStage::no_new_privileges, errno);

  if (plan->listen_pid_digits) write_listen_pid(plan->listen_pid_digits);

  // The mask survives execve; the service starts with nothing blocked (sd_listen_fds(3) and
  // every daemon assume so). A signal arriving now acts by default: our handlers are gone.
  std::uint64_t empty = 0;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, nullptr, sizeof empty) != 0)
    fail_child(plan, ChildStage::signals, errno);

  syscall(SYS_execve, plan->path, plan->argv, plan->envp);
  fail_child(plan, ChildStage::exec, errno);
}

}  // namespace usherd::activation

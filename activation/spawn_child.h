// The child side of the spawn: what runs between clone(CLONE_VM) and execve.
//
// The child shares the parent's memory and runs on a stack of its own: with spawn() the
// parent is suspended (CLONE_VFORK), with Launcher::launch() it runs on at the same time.
// Everything the child needs is prepared by the parent in a ChildPlan (plain pointers and
// integers, no owning types), so the child never allocates. Its one function may call only:
//   - raw system calls that leave errno alone (spawn_child.cpp's sys(): errno lives in the
//     TLS of the parent thread, which the child shares and which may be running);
//   - set*id and setgroups ONLY as raw system calls: glibc's wrappers signal every thread of
//     the parent (they would run the parent's handlers on the child's tid);
//   - no libc function at all, no malloc, no stdio, no logging, no exceptions.
// Failure is reported by storing errno and then the stage into plan->failure (memory the
// parent reads once the child has left it) and exiting 127.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace usherd::activation {

/// Where the child stopped; none means it reached a successful execve.
enum class ChildStage : int {
  none = 0,
  signals,
  fds,
  nonblock,
  close_fds,
  setsid,
  setrlimit,
  nice,
  chroot,
  setgroups,
  setgid,
  setuid,
  chdir,
  no_new_privileges,
  exec,
};

/// The word used in error messages for a stage ("exec", "chdir", "setuid", ...).
const char* to_string(ChildStage stage);

/// Failure record written by the child before _exit(127).
struct ChildFailure {
  ChildStage stage = ChildStage::none;
  int error = 0;
};

/// One descriptor handover: the parent's source becomes target in the child.
struct ChildFdMove {
  int source;
  int target;
};

/// One resource limit applied in the child.
struct ChildRLimit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

/// Everything the child needs, prepared by the parent; the child writes only to failure,
/// temp_fds and listen_pid_digits.
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  /// Points just past "LISTEN_PID=" inside an envp entry with room for 20 digits and a NUL;
  /// null when LISTEN_PID is not set.
  char* listen_pid_digits = nullptr;
  const ChildFdMove* fds = nullptr;
  std::size_t fd_count = 0;
  /// Scratch space of fd_count ints: the fd each mapping is duplicated from (its source, or
  /// the copy of it moved above the highest target).
  int* temp_fds = nullptr;
  const int* clear_nonblock = nullptr;
  std::size_t clear_nonblock_count = 0;
  const ChildRLimit* rlimits = nullptr;
  std::size_t rlimit_count = 0;
  /// No RLIMIT_NOFILE among rlimits: the child sets soft min(nofile_soft, hard) with hard
  /// min(the inherited hard limit, nofile_hard_max), from the limit it reads anyway (so the
  /// parent need not read its own at every spawn).
  bool default_nofile = false;
  rlim_t nofile_soft = 0;
  rlim_t nofile_hard_max = 0;
  bool set_nice = false;
  int nice = 0;
  const char* root_directory = nullptr;  ///< null or empty: no chroot
  bool set_credentials = false;
  bool set_groups = false;  ///< setgroups needs CAP_SETGID; false when unprivileged
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  std::size_t group_count = 0;
  const char* working_directory = nullptr;  ///< null or empty: stay
  bool working_directory_optional = false;
  mode_t umask = 022;
  bool no_new_privileges = false;
  /// Signals to reset to SIG_DFL, bit (signal - 1): those whose disposition in the parent is
  /// not the default (see note_signal_dispositions in spawn.h); all of them by default.
  std::uint64_t reset_signals = ~std::uint64_t{0};
  ChildFailure* failure = nullptr;
};

/// The clone entry point: arg is a ChildPlan*. Returns only by execve or exit_group(127).
int run_spawn_child(void* arg);

}  // namespace usherd::activation

// Process helpers built on pidfds: the supervisor names an instance by its pidfd, never by a
// bare pid, so a signal or a reap can never reach a recycled pid. Also the /proc facts the
// readiness attribution and the re-adoption after a restart need (parent pid, start time),
// and the orphan reaper of a child subreaper that never steals a tracked instance's status.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// How a process ended.
struct ExitStatus {
  bool signaled = false;     ///< killed by a signal (code_or_signal is the signal)
  int code_or_signal = 0;    ///< exit code, or the signal number when signaled
  bool core_dumped = false;  ///< the signal dumped core
};

/// pidfd_open(pid, 0); the fd is close-on-exec.
Result<UniqueFd> open_pidfd(pid_t pid);

/// pidfd_send_signal(pidfd, sig); ESRCH when the process has ended (even if not yet reaped).
Result<void> send_signal(int pidfd, int sig);

/// The set of processes whose end the supervisor waits for: one epoll instance holding every
/// tracked pidfd, itself watched by the event loop as a single fd. Each pidfd reports its end
/// once (EPOLLONESHOT) under a key of the caller's; watch() is the one system call a new
/// process costs, and closing the pidfd takes it out of the set (no call at all), where a
/// descriptor object per process in the loop costs four calls and a reactor entry each.
/// A pidfd whose file lives on elsewhere after its close (a copy in a child not yet past its
/// close_range) has reported, or will report, at most once more: keys are never reused, so
/// the caller ignores a key it no longer tracks.
class ExitWatch {
 public:
  static Result<ExitWatch> create();
  /// The fd the event loop waits on: readable while some watched process has ended.
  int fd() const { return epoll_.get(); }
  /// Starts watching: key is reported once the process ends.
  Result<void> watch(int pidfd, std::uint64_t key);
  /// Reports the process's end again (after a report that came before it could be reaped).
  Result<void> rearm(int pidfd, std::uint64_t key);
  /// Appends the keys of ended processes reported since the last call, without waiting;
  /// at most `limit` (the rest stay for the next call). Returns how many were appended.
  std::size_t take(std::vector<std::uint64_t>& keys, std::size_t limit = 64);

 private:
  explicit ExitWatch(UniqueFd epoll) : epoll_(std::move(epoll)) {}
  UniqueFd epoll_;
};

/// Reaps the process if it has ended (waitid(P_PIDFD, WEXITED | WNOHANG)); nullopt while it
/// runs. ECHILD when it is not our child or already reaped.
Result<std::optional<ExitStatus>> try_reap(int pidfd);

/// The inode number of a pidfd where pidfds live on pidfs (Linux 6.9+): unique to one process
/// for as long as the system runs, so it identifies the process across a restart of usherd
/// at the cost of one fstat(). 0 on older kernels, whose pidfds share one anonymous inode
/// (use process_start_time() there).
Result<std::uint64_t> pidfd_inode(int pidfd);

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot), parsed after the last
/// ')' so a comm containing spaces or parentheses cannot shift the fields.
Result<std::uint64_t> process_start_time(pid_t pid);

/// True when the process has exited and only its zombie remains (state Z or X in
/// /proc/PID/stat): a pidfd can still be opened on it and its start time still read.
Result<bool> has_ended(pid_t pid);

/// Field 4 of /proc/PID/stat.
Result<pid_t> parent_pid(pid_t pid);

/// Field 6 of /proc/PID/stat: the session id. Every process usherd starts leads a session of
/// its own (setsid in the child), and a session leader's session id stays its pid for life.
Result<pid_t> process_session(pid_t pid);

/// This boot's id (/proc/sys/kernel/random/boot_id): pids and start times from another boot
/// name nothing.
Result<std::string> boot_id();

/// True when ancestor is pid itself or appears on pid's parent chain.
bool is_descendant(pid_t pid, pid_t ancestor);

/// PR_SET_CHILD_SUBREAPER: orphaned descendants are re-parented to us, not to init.
Result<void> become_child_subreaper();

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
Result<rlim_t> raise_nofile_to_hard();

/// Reaps every ended child for which is_tracked(pid) is false; tracked children are only
/// peeked at (WNOWAIT) and left for their owner to reap through the pidfd. Returns the pids
/// reaped.
std::vector<pid_t> reap_untracked(const std::function<bool(pid_t)>& is_tracked);

}  // namespace usherd::activation

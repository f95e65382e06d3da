// spawn() and Launcher: start one service process with exactly the fds, limits, signals,
// session and credentials it should have, and nothing inherited by accident.
//
// The parent prepares everything (argv/envp arrays, a pre-sized LISTEN_PID slot, the fd map,
// raw ids, rlimits), blocks every signal, and starts the child with clone(CLONE_VM |
// CLONE_PIDFD) on an mmap'd stack of its own: the cost does not grow with the supervisor's
// memory (a fork of a large parent copies page tables), and the pidfd exists from the first
// instant, so no pid reuse race is possible. The child (spawn_child.cpp) runs only raw system
// calls. If it fails before execve it leaves its stage and errno in shared memory, from which
// the parent makes an Error such as "exec /usr/bin/x: No such file or directory" (Error::code
// = errno). spawn() waits for the execve (CLONE_VFORK); a Launcher does not (see below).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "activation/credentials.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// The parent's fd source becomes fd target in the child.
struct FdMapping {
  int source;
  int target;
};

/// One resource limit for the child (setrlimit resource, soft, hard).
struct RLimit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

/// RLIMIT_NOFILE the child gets when the plan does not name one: soft 1024, hard
/// min(inherited hard, 524288) (systemd's default), so a service that raises its soft limit
/// to its hard one cannot recreate a close() loop to 2^30.
inline constexpr rlim_t kDefaultNofileSoft = 1024;
/// Upper bound of the default hard RLIMIT_NOFILE.
inline constexpr rlim_t kDefaultNofileHardMax = 524288;

/// The RLIMIT_NOFILE a child gets when its plan names none, given the hard limit it would
/// inherit: {min(1024, hard), min(hard, 524288)}.
RLimit default_nofile_limit(rlim_t inherited_hard);

/// Everything that defines one process start.
struct SpawnPlan {
  std::string path;                        ///< executable, used as is by execve (absolute)
  std::vector<std::string> argv;           ///< argv[0] included
  std::vector<std::string> env;            ///< the complete environment, K=V
  bool set_listen_pid = false;             ///< the child adds LISTEN_PID=<its own pid>
  std::vector<FdMapping> fds;              ///< the only fds the child keeps; everything else closes
  std::vector<int> clear_nonblock;         ///< target fds whose O_NONBLOCK is cleared
  std::vector<RLimit> rlimits;             ///< applied in the child; see kDefaultNofileSoft
  std::optional<Credentials> credentials;  ///< user/groups to switch to
  bool no_new_privileges = false;          ///< PR_SET_NO_NEW_PRIVS
  std::string working_directory;           ///< chdir target ("" = stay)
  bool working_directory_optional = false;  ///< a failing chdir is ignored (systemd's "-")
  std::string root_directory;               ///< chroot target ("" = none)
  mode_t umask = 022;                       ///< the child's umask
  std::optional<int> nice;                  ///< absolute nice value
};

/// A started process: its pid and a pidfd that refers to it alone.
struct SpawnedProcess {
  pid_t pid = -1;
  UniqueFd pidfd;
};

/// Records which signals have a disposition other than SIG_DFL in this process now (caught or
/// ignored), so that children reset just those before exec instead of all 64 (a system call
/// each, ~26 µs of every spawn on the machine bench/RESULTS.md describes). Until it is called,
/// children reset every signal; call it again after any change of a disposition (usherd sets
/// its handlers once, at start).
void note_signal_dispositions();
/// Back to the default: children reset every signal.
void forget_signal_dispositions();

/// Starts the process described by plan and waits until it has exec'd. Errors name the stage
/// that failed ("exec PATH", "chdir DIR", "setuid UID", ...) with the child's errno as
/// Error::code; the failed child is already reaped.
Result<SpawnedProcess> spawn(const SpawnPlan& plan);

/// Starts processes without waiting for them to exec: usherd's per-connection path.
///
/// spawn() suspends the calling thread from clone until the child's execve (CLONE_VFORK), a
/// context switch and the child's whole preparation per connection on the thread that
/// accepts. launch() clones without CLONE_VFORK and returns at once; the child prepares and
/// execs on another core meanwhile. Everything the child reads until then lives in a slot
/// that the launcher keeps: the plan (moved in), the prepared arrays, a stack of its own, and
/// a word the kernel clears (CLONE_CHILD_CLEARTID) when the child leaves usherd's memory, at
/// its execve or its exit. A slot is reused only after that. The child's copy of the fd
/// table is taken at clone, so the caller closes its own copies of the plan's fds as soon as
/// launch() returns.
///
/// A child that fails before execve exits 127 and leaves its stage and errno in the slot;
/// take_failure(pid), once the process has exited, turns that into the same Error spawn()
/// would have returned. Not thread-safe: one launcher per thread.
class Launcher {
 public:
  /// At most max_starting children between clone and execve at once (beyond: EAGAIN).
  explicit Launcher(std::size_t max_starting = 128);
  /// Waits (at most 2 s) for children still before their execve.
  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  using Clock = std::chrono::steady_clock;

  /// Starts the process; fails only before the clone (a bad plan, no slot, clone's own
  /// errors: EAGAIN, EMFILE for the pidfd, ...). group is the caller's tag for what the
  /// process belongs to (a socket), now the time of the launch.
  Result<SpawnedProcess> launch(SpawnPlan&& plan, std::uint64_t group = 0,
                                Clock::time_point now = Clock::now());
  /// After a launched process has exited: why it never reached execve, or nullopt if it did.
  /// Each failure is returned once.
  std::optional<Error> take_failure(pid_t pid);
  /// Launched children that have not reached execve (or their exit) yet.
  std::size_t starting();
  /// Those of them launched at or after since: children still making progress, as opposed
  /// to one stopped before its execve (SIGSTOP from its own user, a hung file system).
  std::size_t starting_since(Clock::time_point since);
  /// A launched child still before its execve.
  struct Stalled {
    pid_t pid;
    std::uint64_t group;
    Clock::time_point launched;
  };
  /// The children launched before since that have not reached execve (or their exit).
  std::vector<Stalled> launched_before(Clock::time_point since);

 private:
  struct Slot;
  void collect();
  /// A free slot, or a new one.
  std::unique_ptr<Slot> take_slot();

  std::size_t max_starting_;
  std::vector<std::unique_ptr<Slot>> busy_;
  std::vector<std::unique_ptr<Slot>> free_;
  std::unordered_map<pid_t, Error> failures_;
};

}  // namespace usherd::activation

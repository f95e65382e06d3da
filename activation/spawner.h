// Spawner: a few threads that run spawn() for the event loop, so the loop is not suspended
// while each child gets from clone to execve.
//
// clone(CLONE_VM | CLONE_VFORK) suspends only the calling thread until the child has exec'ed
// (or failed): run on a spawner thread, that wait overlaps with the loop accepting the next
// connection and with the other core exec'ing another child. With one thread doing accept,
// spawn and reap, the measured ceiling on 2 cores was ~0.92-0.99x busybox tcpsvd (vfork);
// with spawner threads it is above it (bench/RESULTS.md). The daemon hands a spawn to these
// threads only when connections come in batches: a lone connection is spawned on the loop,
// since two thread wake-ups would only add to the latency its client sees.
//
// The threads own nothing: a Job carries a prepared SpawnPlan, the fds the parent must keep
// open until the child has them (closed by the spawner thread right after the spawn) and a
// completion that runs on the spawner thread (the daemon's posts the result back to its loop).
//
// The orphan reaper of a child subreaper must never reap a child it does not know yet: a
// child spawned here and not yet handed to the loop looks untracked. Every clone and the
// registration of its pid happen under a shared lock; with_clones_paused() takes it
// exclusively and gives the caller a predicate for "started here, not yet claimed". The lock
// prefers the writer: with spawner threads cloning back to back, a reader-preferring lock
// could keep the reaper (on the event loop) waiting for as long as a flood lasts.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "activation/spawn.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

class Spawner {
 public:
  /// Runs on the spawner thread with the outcome of the spawn; must not block for long.
  using Done = std::function<void(Result<SpawnedProcess>)>;

  struct Job {
    SpawnPlan plan;
    std::vector<UniqueFd> close_after;  ///< the plan's sources the parent no longer needs
    Done done;
  };

  /// Starts threads (at least one) with every signal blocked, so signals go to the caller's
  /// threads.
  explicit Spawner(unsigned threads);
  /// Stops the threads once the jobs being spawned are done; queued jobs are dropped (their
  /// fds close, their completion does not run).
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  /// Queues a job; any thread may call it.
  void submit(Job job);

  /// The pid of a successful spawn stays "unclaimed" from the clone until claim(pid): call it
  /// once the pid is tracked elsewhere.
  void claim(pid_t pid);

  /// Runs f while no spawner thread is cloning, passing a predicate that is true for pids
  /// spawned here and not yet claimed.
  void with_clones_paused(const std::function<void(const std::function<bool(pid_t)>&)>& f);

  unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

 private:
  void run();

  std::mutex queue_mutex_;
  std::condition_variable queue_ready_;
  std::deque<Job> queue_;
  bool stopping_ = false;

  pthread_rwlock_t clone_lock_;  ///< shared: a clone in progress; exclusive: paused
  std::mutex unclaimed_mutex_;
  std::unordered_set<pid_t> unclaimed_;

  std::vector<std::thread> threads_;
};

}  // namespace usherd::activation

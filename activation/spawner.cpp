// Spawner threads (see spawner.h).
#include "activation/spawner.h"

#include <signal.h>

namespace usherd::activation {
namespace {

// Releases a pthread rwlock at the end of a scope, however it ends.
struct RwUnlock {
  pthread_rwlock_t* lock;
  ~RwUnlock() { pthread_rwlock_unlock(lock); }
};

}  // namespace

Spawner::Spawner(unsigned threads) {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&clone_lock_, &attr);
  pthread_rwlockattr_destroy(&attr);
  if (threads == 0) threads = 1;
  // New threads inherit the creating thread's mask: block everything while creating them so
  // no signal handler of the process ever runs on a spawner thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Spawner::~Spawner() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
    queue_.clear();
  }
  queue_ready_.notify_all();
  for (auto& t : threads_) t.join();
  pthread_rwlock_destroy(&clone_lock_);
}

void Spawner::submit(Job job) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(job));
  }
  queue_ready_.notify_one();
}

void Spawner::claim(pid_t pid) {
  std::lock_guard lock(unclaimed_mutex_);
  unclaimed_.erase(pid);
}

void Spawner::with_clones_paused(const std::function<void(const std::function<bool(pid_t)>&)>& f) {
  pthread_rwlock_wrlock(&clone_lock_);
  RwUnlock unlock{&clone_lock_};
  std::lock_guard lock(unclaimed_mutex_);
  f([this](pid_t pid) { return unclaimed_.count(pid) > 0; });
}

void Spawner::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(queue_mutex_);
      queue_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Result<SpawnedProcess> spawned = [&] {
      pthread_rwlock_rdlock(&clone_lock_);
      RwUnlock unlock{&clone_lock_};
      auto result = spawn(job.plan);
      if (result) {
        std::lock_guard lock(unclaimed_mutex_);
        unclaimed_.insert(result->pid);
      }
      return result;
    }();
    job.close_after.clear();
    job.done(std::move(spawned));
  }
}

}  // namespace usherd::activation

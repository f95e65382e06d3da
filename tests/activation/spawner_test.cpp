// Spawner threads: a job's process starts off the caller's thread, the completion reports it,
// the fds handed over are closed once the child has them, and a pid stays visible as
// "unclaimed" to the orphan reaper until the caller claims it.
#include "activation/spawner.h"

#include <fcntl.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

namespace {

// Collects the completion of one job; waits for it with a deadline.
struct Outcome {
  std::mutex mutex;
  std::condition_variable done;
  std::optional<Result<SpawnedProcess>> result;
  std::thread::id thread;

  Spawner::Done callback() {
    return [this](Result<SpawnedProcess> r) {
      std::lock_guard lock(mutex);
      result = std::move(r);
      thread = std::this_thread::get_id();
      done.notify_all();
    };
  }

  Result<SpawnedProcess> wait() {
    std::unique_lock lock(mutex);
    REQUIRE(done.wait_for(lock, std::chrono::seconds(20), [this] { return result.has_value(); }));
    return std::move(*result);
  }
};

SpawnPlan echo_plan(int stdout_fd, int null_fd, const std::string& word) {
  SpawnPlan plan;
  plan.path = "/bin/echo";
  plan.argv = {"echo", word};
  plan.fds = {{null_fd, 0}, {stdout_fd, 1}, {null_fd, 2}};
  return plan;
}

}  // namespace

TEST_CASE("a spawner thread starts the process and reports it through the completion",
          "[activation][spawner]") {
  Spawner spawner(2);
  CHECK(spawner.threads() == 2);
  auto [out_read, out_write] = make_pipe();
  auto null = open_dev_null();
  int write_fd = out_write.get();

  Outcome outcome;
  Spawner::Job job;
  job.plan = echo_plan(write_fd, null.get(), "hello");
  job.close_after.push_back(std::move(out_write));
  job.done = outcome.callback();
  spawner.submit(std::move(job));

  auto spawned = outcome.wait();
  REQUIRE(spawned);
  CHECK(outcome.thread != std::this_thread::get_id());
  CHECK(spawned->pid > 0);
  // usherd's copy of the write end was closed by the spawner: EOF once echo exits.
  CHECK(read_all(out_read.get()) == "hello\n");
  auto status = wait_exit(spawned->pidfd.get());
  CHECK_FALSE(status.signaled);
  CHECK(status.code_or_signal == 0);
  spawner.claim(spawned->pid);
}

TEST_CASE("a failed spawn reports the stage and errno, and leaves no pid unclaimed",
          "[activation][spawner]") {
  Spawner spawner(1);
  auto null = open_dev_null();
  Outcome outcome;
  Spawner::Job job;
  job.plan = echo_plan(null.get(), null.get(), "never");
  job.plan.path = "/nonexistent/usherd-spawner-test";
  job.done = outcome.callback();
  spawner.submit(std::move(job));

  auto spawned = outcome.wait();
  REQUIRE_FALSE(spawned);
  CHECK(spawned.error().code == ENOENT);
  CHECK(spawned.error().message == "exec /nonexistent/usherd-spawner-test");
  bool any = true;
  spawner.with_clones_paused([&](const std::function<bool(pid_t)>& unclaimed) {
    any = false;
    for (pid_t pid = 1; pid < 4096 && !any; ++pid) any = unclaimed(pid);
  });
  CHECK_FALSE(any);
}

TEST_CASE("a spawned pid is unclaimed for the orphan reaper until the caller claims it",
          "[activation][spawner]") {
  Spawner spawner(1);
  auto [in_read, in_write] = make_pipe();
  auto null = open_dev_null();
  Outcome outcome;
  Spawner::Job job;
  job.plan.path = "/bin/cat";
  job.plan.argv = {"cat"};
  job.plan.fds = {{in_read.get(), 0}, {null.get(), 1}, {null.get(), 2}};
  job.done = outcome.callback();
  spawner.submit(std::move(job));
  auto spawned = outcome.wait();
  REQUIRE(spawned);
  pid_t pid = spawned->pid;

  // It has ended (a zombie now): the reaper, told what is unclaimed, leaves it alone.
  in_write.reset();
  REQUIRE(wait_readable(spawned->pidfd.get(), std::chrono::seconds(20)));
  std::vector<pid_t> reaped;
  spawner.with_clones_paused([&](const std::function<bool(pid_t)>& unclaimed) {
    CHECK(unclaimed(pid));
    reaped = reap_untracked(unclaimed);
  });
  CHECK(std::find(reaped.begin(), reaped.end(), pid) == reaped.end());
  auto status = wait_exit(spawned->pidfd.get());
  CHECK(status.code_or_signal == 0);

  spawner.claim(pid);
  spawner.with_clones_paused(
      [&](const std::function<bool(pid_t)>& unclaimed) { CHECK_FALSE(unclaimed(pid)); });
}

TEST_CASE("spawner threads keep every signal blocked", "[activation][spawner]") {
  Spawner spawner(1);
  auto null = open_dev_null();
  Outcome outcome;
  sigset_t seen;
  sigemptyset(&seen);
  Spawner::Job job;
  job.plan = echo_plan(null.get(), null.get(), "x");
  job.done = [&](Result<SpawnedProcess> r) {
    pthread_sigmask(SIG_SETMASK, nullptr, &seen);
    outcome.callback()(std::move(r));
  };
  spawner.submit(std::move(job));
  auto spawned = outcome.wait();
  REQUIRE(spawned);
  (void)wait_exit(spawned->pidfd.get());
  CHECK(sigismember(&seen, SIGTERM) == 1);
  CHECK(sigismember(&seen, SIGCHLD) == 1);
  CHECK(sigismember(&seen, SIGHUP) == 1);
}

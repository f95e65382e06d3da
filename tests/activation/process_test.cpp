// pidfd signalling and reaping, /proc parsing, and the orphan reaper that leaves tracked
// instances alone.
#include "activation/process.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <vector>

#include "activation/spawn.h"
#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

namespace {

// /bin/cat reading a pipe: a child that lives until the test closes its stdin.
struct BlockedChild {
  SpawnedProcess process;
  UniqueFd stdin_write;
};

BlockedChild spawn_blocked() {
  auto [in_read, in_write] = make_pipe();
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = "/bin/cat";
  plan.argv = {"cat"};
  plan.fds = {{in_read.get(), 0}, {null.get(), 1}, {null.get(), 2}};
  auto process = spawn(plan);
  REQUIRE(process);
  return BlockedChild{std::move(*process), std::move(in_write)};
}

SpawnedProcess spawn_exit(int code) {
  SpawnPlan plan;
  plan.path = "/bin/sh";
  plan.argv = {"sh", "-c", "exit " + std::to_string(code)};
  auto null = open_dev_null();
  plan.fds = {{null.get(), 0}, {null.get(), 1}, {null.get(), 2}};
  auto process = spawn(plan);
  REQUIRE(process);
  return std::move(*process);
}

}  // namespace

TEST_CASE("a running child is not reaped, and a signal through its pidfd ends it and is reported",
          "[activation][process]") {
  auto child = spawn_blocked();
  auto early = try_reap(child.process.pidfd.get());
  REQUIRE(early);
  CHECK_FALSE(early->has_value());

  REQUIRE(send_signal(child.process.pidfd.get(), SIGTERM));
  auto status = wait_exit(child.process.pidfd.get());
  CHECK(status.signaled);
  CHECK(status.code_or_signal == SIGTERM);
  CHECK_FALSE(status.core_dumped);

  auto again = send_signal(child.process.pidfd.get(), SIGTERM);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == ESRCH);
  auto reaped_twice = try_reap(child.process.pidfd.get());
  REQUIRE_FALSE(reaped_twice);
  CHECK(reaped_twice.error().code == ECHILD);
}

TEST_CASE("an exit code is reported as such", "[activation][process]") {
  auto child = spawn_exit(42);
  auto status = wait_exit(child.pidfd.get());
  CHECK_FALSE(status.signaled);
  CHECK(status.code_or_signal == 42);
}

TEST_CASE("open_pidfd refers to the process and fails for a pid that does not exist",
          "[activation][process]") {
  auto child = spawn_blocked();
  auto pidfd = open_pidfd(child.process.pid);
  REQUIRE(pidfd);
  CHECK((fcntl(pidfd->get(), F_GETFD) & FD_CLOEXEC) != 0);
  REQUIRE(send_signal(pidfd->get(), SIGKILL));
  CHECK(wait_exit(child.process.pidfd.get()).code_or_signal == SIGKILL);
  CHECK_FALSE(open_pidfd(child.process.pid));  // reaped: gone
}

TEST_CASE("/proc/PID/stat is parsed past a comm containing spaces and parentheses",
          "[activation][process]") {
  char saved[17] = {};
  REQUIRE(prctl(PR_GET_NAME, saved) == 0);
  REQUIRE(prctl(PR_SET_NAME, "a) 1 2 (b") == 0);
  auto ppid = parent_pid(getpid());
  auto start = process_start_time(getpid());
  prctl(PR_SET_NAME, saved);
  REQUIRE(ppid);
  CHECK(*ppid == getppid());
  REQUIRE(start);
  CHECK(*start > 0);
  CHECK(process_start_time(getpid()).value_or(0) == *start);
}

TEST_CASE("a child's start time is stable and its ancestry leads to us", "[activation][process]") {
  auto child = spawn_blocked();
  auto start = process_start_time(child.process.pid);
  REQUIRE(start);
  CHECK(*start >= process_start_time(getpid()).value_or(0));
  CHECK(parent_pid(child.process.pid).value_or(-1) == getpid());
  CHECK(is_descendant(child.process.pid, getpid()));
  CHECK(is_descendant(child.process.pid, child.process.pid));
  CHECK_FALSE(is_descendant(getpid(), child.process.pid));
  CHECK(has_ended(child.process.pid).value_or(true) == false);
  child.stdin_write.reset();
  // Ended, not yet reaped: a zombie whose start time can still be read.
  REQUIRE(wait_readable(child.process.pidfd.get(), std::chrono::seconds(20)));
  CHECK(has_ended(child.process.pid).value_or(false));
  CHECK(process_start_time(child.process.pid).value_or(0) == *start);
  CHECK(wait_exit(child.process.pidfd.get()).code_or_signal == 0);
  CHECK_FALSE(process_start_time(child.process.pid));
  CHECK_FALSE(has_ended(child.process.pid));
}

TEST_CASE("a pidfd's inode names one process: two pidfds of it agree, another process differs",
          "[activation][process]") {
  auto child = spawn_blocked();
  auto again = open_pidfd(child.process.pid);
  REQUIRE(again);
  auto own = open_pidfd(getpid());
  REQUIRE(own);
  auto a = pidfd_inode(child.process.pidfd.get());
  auto b = pidfd_inode(again->get());
  auto other = pidfd_inode(own->get());
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(other);
  CHECK(*a == *b);
  // 0 everywhere on kernels without pidfs (before 6.9): the start time identifies instead.
  if (*a != 0) CHECK(*other != *a);
  child.stdin_write.reset();
  CHECK(wait_exit(child.process.pidfd.get()).code_or_signal == 0);
}

TEST_CASE("the orphan reaper reaps untracked children and leaves a tracked one's status",
          "[activation][process]") {
  auto tracked = spawn_exit(7);
  auto untracked_a = spawn_exit(0);
  auto untracked_b = spawn_exit(0);
  // All three have ended once their pidfds are readable (they are zombies now).
  REQUIRE(wait_readable(tracked.pidfd.get(), std::chrono::seconds(10)));
  REQUIRE(wait_readable(untracked_a.pidfd.get(), std::chrono::seconds(10)));
  REQUIRE(wait_readable(untracked_b.pidfd.get(), std::chrono::seconds(10)));

  auto reaped = reap_untracked([&](pid_t pid) { return pid == tracked.pid; });
  std::sort(reaped.begin(), reaped.end());
  std::vector<pid_t> expected{untracked_a.pid, untracked_b.pid};
  std::sort(expected.begin(), expected.end());
  CHECK(reaped == expected);

  auto status = try_reap(tracked.pidfd.get());
  REQUIRE(status);
  REQUIRE(status->has_value());
  CHECK((*status)->code_or_signal == 7);
  CHECK(reap_untracked([](pid_t) { return false; }).empty());
}

TEST_CASE("raising NOFILE to the hard limit and becoming a subreaper succeed",
          "[activation][process]") {
  rlimit before{};
  getrlimit(RLIMIT_NOFILE, &before);
  auto soft = raise_nofile_to_hard();
  REQUIRE(soft);
  CHECK(*soft == before.rlim_max);
  setrlimit(RLIMIT_NOFILE, &before);
  REQUIRE(become_child_subreaper());
  int flag = 0;
  REQUIRE(prctl(PR_GET_CHILD_SUBREAPER, &flag) == 0);
  CHECK(flag == 1);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

namespace {

// Waits (bounded) for the exit watch to become readable: the kernel's report, not a delay.
bool exit_reported(const ExitWatch& watch) {
  struct pollfd p {
    watch.fd(), POLLIN, 0
  };
  return ::poll(&p, 1, 10'000) == 1;
}

std::vector<std::uint64_t> take_all(ExitWatch& watch) {
  std::vector<std::uint64_t> keys;
  watch.take(keys);
  return keys;
}

}  // namespace

TEST_CASE("the exit watch reports an ended process once under its key, again when re-armed",
          "[activation][process]") {
  auto watch = ExitWatch::create();
  REQUIRE(watch);
  auto a = spawn_blocked();
  auto b = spawn_blocked();
  REQUIRE(watch->watch(a.process.pidfd.get(), 7));
  REQUIRE(watch->watch(b.process.pidfd.get(), 9));
  CHECK(take_all(*watch).empty());

  a.stdin_write.reset();  // cat reads EOF and exits
  REQUIRE(exit_reported(*watch));
  CHECK(take_all(*watch) == std::vector<std::uint64_t>{7});
  CHECK(take_all(*watch).empty());  // once

  // Still unreaped, so still ended: a re-armed watch reports it at once.
  REQUIRE(watch->rearm(a.process.pidfd.get(), 7));
  CHECK(take_all(*watch) == std::vector<std::uint64_t>{7});
  CHECK(wait_exit(a.process.pidfd.get()).code_or_signal == 0);

  b.stdin_write.reset();
  REQUIRE(exit_reported(*watch));
  CHECK(take_all(*watch) == std::vector<std::uint64_t>{9});
  CHECK(wait_exit(b.process.pidfd.get()).code_or_signal == 0);
}

TEST_CASE("a pidfd closed while watched leaves the exit watch", "[activation][process]") {
  auto watch = ExitWatch::create();
  REQUIRE(watch);
  auto gone = spawn_blocked();
  auto kept = spawn_blocked();
  REQUIRE(watch->watch(gone.process.pidfd.get(), 1));
  REQUIRE(watch->watch(kept.process.pidfd.get(), 2));
  pid_t gone_pid = gone.process.pid;
  gone.process.pidfd.reset();
  gone.stdin_write.reset();
  int status = 0;
  REQUIRE(::waitpid(gone_pid, &status, 0) == gone_pid);  // it has certainly ended

  kept.stdin_write.reset();
  REQUIRE(exit_reported(*watch));
  CHECK(take_all(*watch) == std::vector<std::uint64_t>{2});
  CHECK(wait_exit(kept.process.pidfd.get()).code_or_signal == 0);
}

TEST_CASE("the exit watch hands out at most the limit asked for, the rest on the next call",
          "[activation][process]") {
  auto watch = ExitWatch::create();
  REQUIRE(watch);
  std::vector<SpawnedProcess> children;
  for (std::uint64_t key = 0; key < 3; ++key) {
    children.push_back(spawn_exit(0));
    REQUIRE(watch->watch(children.back().pidfd.get(), key));
  }
  for (auto& child : children) {
    // Ended, but left unreaped: waitid(WNOWAIT) waits without taking the status.
    siginfo_t info{};
    REQUIRE(::waitid(static_cast<idtype_t>(P_PIDFD), child.pidfd.get(), &info, WEXITED | WNOWAIT) ==
            0);
  }
  std::vector<std::uint64_t> keys;
  CHECK(watch->take(keys, 2) == 2);
  CHECK(watch->take(keys, 2) == 1);
  CHECK(watch->take(keys, 2) == 0);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::uint64_t>{0, 1, 2});
  for (auto& child : children) CHECK(wait_exit(child.pidfd.get()).code_or_signal == 0);
}

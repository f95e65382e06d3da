// pidfd signalling and reaping, /proc parsing, and the orphan reaper that leaves tracked
// instances alone.
#include "activation/process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

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

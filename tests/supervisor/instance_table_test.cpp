// The instance table with real processes: an exit reaches the owner with its status and the
// hooks run in order; stop escalates; an ownerless instance is only watched; the state file
// lets a second table adopt what the first left running.
#include "supervisor/instance_table.h"

#include <signal.h>
#include <sys/wait.h>

#include <map>

#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

std::unique_ptr<Instance> instance_of(activation::SpawnedProcess&& process, std::string name,
                                      InstanceOwner* owner) {
  auto inst = std::make_unique<Instance>();
  inst->name = std::move(name);
  inst->socket = "t.socket";
  inst->owner = owner;
  inst->pid = process.pid;
  inst->pidfd = std::move(process.pidfd);
  inst->pidfd_inode = activation::pidfd_inode(inst->pidfd.get()).value_or(0);
  if (inst->pidfd_inode == 0)
    inst->start_time = activation::process_start_time(inst->pid).value_or(0);
  inst->started = Clock::now();
  inst->started_wall = std::chrono::system_clock::now();
  return inst;
}

}  // namespace

TEST_CASE("an exit reaches its owner with its status, between the table's hooks",
          "[supervisor][instances]") {
  TempDir dir;
  boost::asio::io_context io;
  InstanceTable table(io, dir / "state");
  RecordingOwner owner;
  std::vector<std::string> hooks;
  table.set_hooks({[&](Instance& i) { hooks.push_back("before_reap " + i.name); },
                   [&](Instance& i) { hooks.push_back("before_forget " + i.name); },
                   [&] { hooks.push_back("after_end"); }});
  REQUIRE(table.start());
  REQUIRE(table.adopt_from_state_file().empty());
  Instance& a = table.track(instance_of(start_process({"/bin/sh", "-c", "exit 7"}), "a", &owner));
  CHECK(table.find(a.key) == &a);
  CHECK(table.find_by_pid(a.pid) == &a);
  CHECK(table.find_by_name("a") == &a);
  REQUIRE(run_until(io, [&] { return table.size() == 0; }));
  CHECK(owner.events == std::vector<std::string>{"ended a"});
  REQUIRE(owner.ends["a"]);
  CHECK_FALSE(owner.ends["a"]->signaled);
  CHECK(owner.ends["a"]->code_or_signal == 7);
  // Still starting when it ended: what it queued is read before it is reaped.
  CHECK(hooks == std::vector<std::string>{"before_reap a", "before_forget a", "after_end"});
}

TEST_CASE("stop signals, and SIGKILL follows when the signal is not enough",
          "[supervisor][instances]") {
  TempDir dir;
  boost::asio::io_context io;
  InstanceTable table(io, dir / "state");
  RecordingOwner owner;
  REQUIRE(table.start());
  // Ignores SIGTERM (and says so once its trap is set): only the escalation ends it.
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  UniqueFd said(fds[0]), say(fds[1]);
  Instance& stubborn = table.track(instance_of(
      start_process({"/bin/sh", "-c", "trap '' TERM; echo set >&2; while :; do sleep 1; done"}, {},
                    say.get()),
      "stubborn", &owner));
  say.reset();
  char word[4] = {};
  REQUIRE(::read(said.get(), word, 3) == 3);
  Instance& polite =
      table.track(instance_of(start_process({"/bin/sleep", "30"}), "polite", &owner));
  table.stop(polite, SIGTERM, std::chrono::seconds(30));
  table.stop(stubborn, SIGTERM, std::chrono::milliseconds(300));
  CHECK(polite.state == Instance::State::stopping);
  REQUIRE(run_until(io, [&] { return table.size() == 0; }));
  REQUIRE(owner.ends["polite"]);
  CHECK(owner.ends["polite"]->signaled);
  CHECK(owner.ends["polite"]->code_or_signal == SIGTERM);
  REQUIRE(owner.ends["stubborn"]);
  CHECK(owner.ends["stubborn"]->code_or_signal == SIGKILL);
}

TEST_CASE("an ownerless instance is watched until it ends", "[supervisor][instances]") {
  TempDir dir;
  boost::asio::io_context io;
  InstanceTable table(io, dir / "state");
  REQUIRE(table.start());
  {
    RecordingOwner gone;
    table.track(instance_of(start_process({"/bin/sh", "-c", "exit 0"}), "x", &gone));
    table.disown(&gone);
    CHECK(table.find_by_name("x")->owner == nullptr);
  }
  REQUIRE(run_until(io, [&] { return table.size() == 0; }));
}

TEST_CASE("a second table adopts what the first recorded, proven by identity",
          "[supervisor][instances]") {
  TempDir dir;
  RecordingOwner owner;
  pid_t pid = 0;
  {
    boost::asio::io_context io;
    InstanceTable first(io, dir / "state");
    REQUIRE(first.start());
    REQUIRE(first.adopt_from_state_file().empty());
    Instance& kept =
        first.track(instance_of(start_process({"/bin/sleep", "30"}), "kept@1.service", &owner));
    kept.peer = "127.0.0.2:4000";
    first.persist(kept, StateFile::Event::spawned);
    first.flush_state();
    pid = kept.pid;
    // The first usherd goes away without stopping it (its pidfd closes with the table).
  }
  boost::asio::io_context io;
  InstanceTable second(io, dir / "state");
  REQUIRE(second.start());
  auto adopted = second.adopt_from_state_file();
  REQUIRE(adopted.size() == 1);
  CHECK(adopted[0]->pid == pid);
  CHECK(adopted[0]->adopted);
  CHECK(adopted[0]->owner == nullptr);
  CHECK(adopted[0]->remote_ip == "127.0.0.2");
  CHECK(adopted[0]->state == Instance::State::starting);
  second.stop(*adopted[0], SIGKILL, std::chrono::seconds(5));
  // Not its child: the end is seen through the pidfd, with no status.
  REQUIRE(run_until(io, [&] { return second.size() == 0; }));
  ::waitpid(pid, nullptr, 0);  // this test process is its real parent
}

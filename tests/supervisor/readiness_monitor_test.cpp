// Readiness from real processes: READY=1 from the instance itself counts, the same datagram
// from anyone else does not; X-ReadyLog= matches a record's start only; STOPPING=1 starts the
// stop deadline; a startup deadline stops an instance that never becomes ready.
#include "supervisor/readiness_monitor.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "activation/ready_log.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

struct Fixture : TableFixture {
  RecordingOwner owner;
  Fixture() { readiness.start(notify_path()); }
  std::string notify_path() const { return dir / "notify"; }
  Instance& track(activation::SpawnedProcess&& p, std::string name,
                  std::shared_ptr<ServicePlan> plan) {
    auto inst = std::make_unique<Instance>();
    inst->name = std::move(name);
    inst->socket = "t.socket";
    inst->owner = &owner;
    inst->pid = p.pid;
    inst->pidfd = std::move(p.pidfd);
    inst->pidfd_inode = activation::pidfd_inode(inst->pidfd.get()).value_or(0);
    inst->plan = std::move(plan);
    inst->started = Clock::now();
    return table.track(std::move(inst));
  }
  // A process that sends payload to the notify socket, then waits for its end.
  activation::SpawnedProcess notifier(const std::string& payload) {
    return start_process({"/usr/bin/python3", "-c",
                          "import os, socket, sys, time\n"
                          "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
                          "s.sendto(sys.argv[1].encode(), os.environ['NOTIFY_SOCKET'])\n"
                          "time.sleep(30)\n",
                          payload},
                         {"NOTIFY_SOCKET=" + notify_path()});
  }
};

void send_from_here(const std::string& path, const std::string& payload) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

}  // namespace

TEST_CASE("READY=1 counts from the instance, never from another process",
          "[supervisor][readiness]") {
  Fixture f;
  auto plan = plan_for("n@.service", "[Service]\nExecStart=/bin/true\nType=notify\n");
  Instance& inst = f.track(f.notifier("READY=1\nSTATUS=up"), "n@1.service", plan);
  // Forged: the same words from the test process, which is no instance.
  send_from_here(f.notify_path(), "READY=1");
  REQUIRE(run_until(f.io, [&] { return inst.state == Instance::State::running; }));
  CHECK(inst.ready_via == std::string("notify"));
  CHECK(f.owner.events == std::vector<std::string>{"ready n@1.service notify"});
  REQUIRE(run_until(f.io, [&] { return f.readiness.notify_rejected() == 1; }));
  f.table.stop(inst, SIGKILL, std::chrono::seconds(5));
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
}

TEST_CASE("STOPPING=1 from a ready instance starts its stop deadline", "[supervisor][readiness]") {
  Fixture f;
  auto plan =
      plan_for("s@.service", "[Service]\nExecStart=/bin/true\nType=notify\nTimeoutStopSec=200ms\n");
  Instance& inst = f.track(f.notifier("READY=1\nSTOPPING=1"), "s@1.service", plan);
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  // Ready, then stopping by itself; then stopped as its unit says when the deadline passed.
  CHECK(f.owner.events ==
        std::vector<std::string>{"ready s@1.service notify", "ended s@1.service"});
  (void)inst;
}

TEST_CASE("a ready-log record counts only when it begins with the match",
          "[supervisor][readiness]") {
  Fixture f;
  auto plan = plan_for("l@.service",
                       "[Service]\nExecStart=/bin/true\nStandardError=journal\n"
                       "X-ReadyLog=^Accepted publickey\n");
  auto pipe = activation::make_record_pipe();
  REQUIRE(pipe);
  auto p = start_process({"/bin/sh", "-c",
                          "echo 'Invalid user Accepted publickey for x' >&2; sleep 0.2; "
                          "echo 'Accepted publickey for alice' >&2; sleep 30"},
                         {}, pipe->second.get());
  pipe->second.reset();
  auto inst = std::make_unique<Instance>();
  inst->name = "l@1.service";
  inst->socket = "t.socket";
  inst->owner = &f.owner;
  inst->pid = p.pid;
  inst->pidfd = std::move(p.pidfd);
  inst->plan = plan;
  inst->started = Clock::now();
  inst->output = std::make_unique<asio::posix::stream_descriptor>(f.io, pipe->first.release());
  Instance& ref = f.table.track(std::move(inst));
  f.readiness.watch_output(ref);
  REQUIRE(run_until(f.io, [&] { return ref.state == Instance::State::running; }));
  CHECK(f.owner.events == std::vector<std::string>{"ready l@1.service log"});
  f.table.stop(ref, SIGKILL, std::chrono::seconds(5));
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
}

TEST_CASE("the startup deadline stops an instance that never becomes ready",
          "[supervisor][readiness]") {
  Fixture f;
  auto plan = plan_for("t@.service", "[Service]\nExecStart=/bin/true\nType=notify\n");
  Instance& inst = f.track(start_process({"/bin/sleep", "30"}), "t@1.service", plan);
  f.readiness.arm_startup_timeout(inst, std::chrono::milliseconds(100));
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  CHECK(f.readiness.startup_timeouts() == 1);
  CHECK(f.owner.events == std::vector<std::string>{"ended t@1.service"});
}

TEST_CASE("an adopted instance whose capture was lost ends its startup as unknown",
          "[supervisor][readiness]") {
  Fixture f;
  auto plan = plan_for("u@.service", "[Service]\nExecStart=/bin/true\nX-ReadyLog=^Accepted\n");
  Instance& inst = f.track(start_process({"/bin/sleep", "30"}), "u@1.service", plan);
  f.readiness.resume_startup(inst, std::chrono::seconds(120), Clock::now());
  CHECK(inst.ready_via == std::string("unknown"));
  CHECK(f.readiness.startups_unknown() == 1);
  f.table.stop(inst, SIGKILL, std::chrono::seconds(5));
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
}

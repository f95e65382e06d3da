// The Accept=no shell with real processes: the main process gets the listening sockets as
// LISTEN_FDS, ExecStartPre= runs first and can fail the start, Restart= and the back-off act
// on real exits, and shutdown stops the service for good.
#include "supervisor/service_runner.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "base/unique_fd.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

struct Fixture : TableFixture {
  ListenerSet listeners{io};
  int activations = 0;

  Fixture() {
    listeners.set_handlers([this](Listener&) { ++activations; },
                           [](const Socket&, Clock::time_point) { return false; });
  }

  ServiceRunner& add(std::string_view service_text) {
    auto s = std::make_unique<Socket>();
    s->unit = socket_unit("svc.socket", "[Socket]\nListenStream=127.0.0.1:0\n");
    s->service = plan_for(s->unit.service, service_text);
    ListenerSet::Reuse none;
    listeners.open(*s, none);
    s->runner =
        std::make_shared<ServiceRunner>(io, *s, table, readiness, listeners, dev_null.get());
    listeners.sockets().push_back(std::move(s));
    return *listeners.sockets().back()->runner;
  }
};

std::string phase_of(const ServiceRunner& runner) {
  return runner.phase_name();
}

}  // namespace

TEST_CASE("the main process gets the listening sockets, and the socket is watched again after",
          "[supervisor][runner]") {
  Fixture f;
  // Exits 0 only if it was handed exactly its one socket as fd 3; Restart=on-failure would
  // put anything else in restart-wait.
  ServiceRunner& runner = f.add(
      "[Service]\nExecStart=/bin/sh -c 'test \"$LISTEN_FDS\" = 1 && test -S /proc/self/fd/3 "
      "&& test \"$LISTEN_FDNAMES\" = svc.socket'\nRestart=on-failure\n");
  CHECK(phase_of(runner) == "idle");
  runner.activate();
  CHECK(f.table.size() == 1);
  CHECK(phase_of(runner) == "running");  // no readiness declared: running at exec
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  CHECK(phase_of(runner) == "idle");
  CHECK(runner.spawn_failures() == 0);
}

TEST_CASE("a failing ExecStartPre= fails the start, and the next attempt backs off",
          "[supervisor][runner]") {
  Fixture f;
  ServiceRunner& runner =
      f.add("[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 30\nRestartSec=50ms\n");
  runner.activate();
  CHECK(phase_of(runner) == "pre");
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  CHECK(phase_of(runner) == "idle");
  // Restart=no: the socket is watched again after RestartSec=; a connection waiting then
  // wakes the service.
  const std::string& bound = f.listeners.sockets().back()->listeners.front()->bound;
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(run_until(f.io, [&] { return f.activations == 1; }));
}

TEST_CASE("Restart=always starts the service again after a real exit", "[supervisor][runner]") {
  Fixture f;
  ServiceRunner& runner =
      f.add("[Service]\nExecStart=/bin/sh -c 'exit 3'\nRestart=always\nRestartSec=20ms\n");
  runner.activate();
  REQUIRE(run_until(f.io, [&] { return phase_of(runner) == "restart-wait"; }));
  // The timer starts it again: a new main process.
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 1 || phase_of(runner) == "running"; }));
  runner.shutdown();
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0 && phase_of(runner) == "idle"; }));
}

TEST_CASE("shutdown stops a running service with its KillSignal=", "[supervisor][runner]") {
  Fixture f;
  ServiceRunner& runner =
      f.add("[Service]\nExecStart=/bin/sleep 30\nKillSignal=SIGINT\nRestart=always\n");
  runner.activate();
  CHECK(phase_of(runner) == "running");
  pid_t pid = f.table.all().begin()->second->pid;
  runner.shutdown();
  CHECK(phase_of(runner) == "stopping");
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  CHECK(phase_of(runner) == "idle");  // and no restart, whatever Restart= says
  CHECK(pid > 0);
}

// The per-connection path end to end inside one process: real listeners on loopback, the
// real admission engine, real instances launched and reaped.
#include "supervisor/connection_path.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "base/unique_fd.h"
#include "supervisor/convert.h"
#include "supervisor/host_status.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

struct Fixture : TableFixture {
  HostStatus host{io, [] { return std::string("test"); }};
  ListenerSet listeners{io};
  ConnectionPath path{
      io, table, readiness, listeners, host, PlanContext{dir / "notify", {}}, dev_null.get()};

  Fixture() : TableFixture([this] { listeners.resume_exhausted(); }) {
    listeners.set_handlers(
        [this](Listener& l) { path.drain(l); },
        [this](const Socket& s, Clock::time_point now) { return path.must_hold(s, now); });
    readiness.start(dir / "notify");
    path.configure(units::DaemonConfig{});
  }

  Socket& add(std::string name, std::string_view socket_text, std::string_view service_text) {
    auto s = std::make_unique<Socket>();
    s->unit = socket_unit(name, socket_text);
    s->service = plan_for(s->unit.service, service_text, dir / "notify");
    s->policy_id = path.admission().add_socket(to_socket_policy(s->unit));
    s->launch_group = std::hash<std::string>{}(name);
    ListenerSet::Reuse none;
    listeners.open(*s, none);
    listeners.arm_all(*s);
    listeners.sockets().push_back(std::move(s));
    return *listeners.sockets().back();
  }

  policy::SocketStats stats(const Socket& s) {
    return path.admission().socket_stats(s.policy_id).value_or(policy::SocketStats{});
  }

  // Connects to socket and reads until the instance closes the connection.
  std::string exchange(const Socket& s) {
    const std::string& bound = s.listeners.front()->bound;
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port =
        htons(static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1))));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    std::string out;
    bool closed = false;
    REQUIRE(run_until(io, [&] {
      char buf[256];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN)) closed = true;
      return closed;
    }));
    return out;
  }
};

}  // namespace

TEST_CASE("a connection is admitted, launched with the socket on stdin, and released",
          "[supervisor][connections]") {
  Fixture f;
  Socket& echo = f.add("echo.socket", "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
                       "[Service]\nExecStart=/bin/echo hello\nStandardInput=socket\n");
  CHECK(f.exchange(echo) == "hello\n");
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  auto st = f.stats(echo);
  CHECK(st.accepted == 1);
  CHECK(st.admitted == 1);
  CHECK(st.instances == 0);
  CHECK(f.path.admission().startups().current == 0);
  CHECK(f.path.spawn_seconds().count() == 1);
  // No readiness declared: ready at exec, counted as a startup of this socket.
  REQUIRE(f.path.startup_seconds("echo.socket"));
  CHECK(f.path.startup_seconds("echo.socket")->count() == 1);
  CHECK(echo.accept_counter == 1);
}

TEST_CASE("a connection the policy refuses gets the drop message and nothing is spawned",
          "[supervisor][connections]") {
  Fixture f;
  Socket& denied = f.add("denied.socket",
                         "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nIPAddressDeny=any\n"
                         "X-DropMessage=go away\\n\n",
                         "[Service]\nExecStart=/bin/echo never\nStandardInput=socket\n");
  CHECK(f.exchange(denied) == "go away\n");
  auto st = f.stats(denied);
  CHECK(st.admitted == 0);
  CHECK(st.dropped_for(policy::DropReason::acl) == 1);
  CHECK(f.table.size() == 0);
}

TEST_CASE("a program that cannot be executed is a failed spawn, not a penalty",
          "[supervisor][connections]") {
  Fixture f;
  Socket& broken = f.add("broken.socket", "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
                         "[Service]\nExecStart=/nonexistent/program\nStandardInput=socket\n");
  CHECK(f.exchange(broken).empty());
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  CHECK(f.path.spawn_failures() == 1);
  CHECK(f.stats(broken).dropped_for(policy::DropReason::spawn_failed) == 1);
  CHECK(f.path.admission().penalised_sources(Clock::now()).empty());
}

TEST_CASE("an instance that never becomes ready holds a startup until its deadline",
          "[supervisor][connections]") {
  Fixture f;
  Socket& slow = f.add(
      "slow.socket", "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nX-StartupTimeoutSec=300ms\n",
      "[Service]\nExecStart=/bin/sleep 30\nStandardInput=socket\nType=notify\n");
  CHECK(f.exchange(slow).empty());  // the deadline stops it, which closes the connection
  REQUIRE(run_until(f.io, [&] { return f.table.size() == 0; }));
  CHECK(f.readiness.startup_timeouts() == 1);
  CHECK(f.path.admission().startups().peak == 1);
  CHECK(f.path.admission().startups().current == 0);
  CHECK(f.stats(slow).instances == 0);
}

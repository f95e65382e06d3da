// Listeners on loopback: a connection wakes the handler; a reload keeps an unchanged
// listener's fd (no connection refused while the configuration changes); a paused listener
// waits for its timer or an instance's end; a held one for must_hold to say so.
#include "supervisor/listener_set.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "base/unique_fd.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

std::unique_ptr<Socket> socket_of(std::string_view text) {
  auto s = std::make_unique<Socket>();
  s->unit = socket_unit("t.socket", text);
  return s;
}

unsigned port_of(const Listener& l) {
  return static_cast<unsigned>(std::stoul(l.bound.substr(l.bound.rfind(':') + 1)));
}

UniqueFd connect_to(unsigned port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

void accept_one(Listener& l) {
  int fd = ::accept4(l.fd->native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

}  // namespace

TEST_CASE("a connection wakes the handler of its listener", "[supervisor][listeners]") {
  boost::asio::io_context io;
  ListenerSet set(io);
  int woken = 0;
  set.set_handlers(
      [&](Listener& l) {
        ++woken;
        accept_one(l);
      },
      [](const Socket&, Clock::time_point) { return false; });
  set.sockets().push_back(socket_of("[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n"));
  Socket& s = *set.sockets().back();
  ListenerSet::Reuse none;
  set.open(s, none);
  REQUIRE(s.listeners.size() == 1);
  CHECK(s.listeners[0]->owner == &s);
  CHECK(s.fds().size() == 1);
  set.arm_all(s);
  auto client = connect_to(port_of(*s.listeners[0]));
  REQUIRE(run_until(io, [&] { return woken == 1; }));
  CHECK(set.find("t.socket") == &s);
  CHECK(set.find("other.socket") == nullptr);
}

TEST_CASE("a reload keeps the fd of a listener whose address did not change",
          "[supervisor][listeners]") {
  boost::asio::io_context io;
  ListenerSet set(io);
  set.set_handlers([](Listener&) {}, [](const Socket&, Clock::time_point) { return false; });
  auto before = socket_of("[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n");
  ListenerSet::Reuse none;
  set.open(*before, none);
  int fd = before->listeners[0]->fd->native_handle();
  std::string bound = before->listeners[0]->bound;
  // The daemon's reload: listeners of the old socket offered by key to the new one.
  ListenerSet::Reuse reuse;
  for (auto& l : before->listeners) reuse.emplace(l->key, std::move(l));
  auto after = socket_of("[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nMaxConnections=5\n");
  set.open(*after, reuse);
  REQUIRE(after->listeners.size() == 1);
  CHECK(after->listeners[0]->fd->native_handle() == fd);
  CHECK(after->listeners[0]->bound == bound);
  CHECK(reuse.empty());
}

TEST_CASE("a paused listener resumes when an instance ends, a held one when told",
          "[supervisor][listeners]") {
  boost::asio::io_context io;
  ListenerSet set(io);
  int woken = 0;
  bool hold = true;
  set.set_handlers(
      [&](Listener& l) {
        ++woken;
        accept_one(l);
      },
      [&](const Socket&, Clock::time_point) { return hold; });
  set.sockets().push_back(socket_of("[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n"));
  Socket& s = *set.sockets().back();
  ListenerSet::Reuse none;
  set.open(s, none);
  Listener& l = *s.listeners[0];
  set.pause(l, EMFILE);
  CHECK(l.paused);
  REQUIRE(l.exhausted_since);
  set.arm(l);  // paused: not armed
  auto first = connect_to(port_of(l));
  io.run_for(std::chrono::milliseconds(50));
  CHECK(woken == 0);
  set.resume_exhausted();  // an instance ended and freed its fds
  REQUIRE(run_until(io, [&] { return woken == 1; }));
  set.accepted(l);
  CHECK_FALSE(l.exhausted_since);

  set.hold(l);
  CHECK(s.held());
  auto second = connect_to(port_of(l));
  io.run_for(std::chrono::milliseconds(50));
  CHECK(woken == 1);
  hold = false;
  REQUIRE(run_until(io, [&] { return woken == 2; }));
  CHECK_FALSE(s.held());

  set.close_all();
  CHECK_FALSE(l.fd);
  set.arm(l);  // closed: nothing armed
}

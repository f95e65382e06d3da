// Descriptors usherd never asked for: refused by the kernel where it can (SO_PASSRIGHTS), and
// otherwise closed on FdCloser's thread, never on the thread that received them. The
// descriptor used is the one that froze usherd's loop: a TCP socket with SO_LINGER and unsent
// data, whose last close() blocks until its data is sent or the linger time is over.
#include "activation/fd_closer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "activation/notify.h"
#include "activation/ready_log.h"
#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

namespace {

/// A connected TCP pair on loopback whose client side has unsent data and SO_LINGER {1, 30}:
/// closing the last reference to client blocks until server reads everything.
struct LingeringSocket {
  UniqueFd server, client;
};

LingeringSocket lingering_socket() {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(listener);
  int small = 4096;
  REQUIRE(setsockopt(listener.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(listener.get(), 1) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  LingeringSocket s;
  s.client = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(setsockopt(s.client.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  REQUIRE(connect(s.client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  s.server = UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(s.server);
  REQUIRE(fcntl(s.client.get(), F_SETFL, O_NONBLOCK) == 0);
  char chunk[4096] = {};
  while (::send(s.client.get(), chunk, sizeof chunk, MSG_NOSIGNAL) > 0) {
  }
  REQUIRE(errno == EAGAIN);
  REQUIRE(fcntl(s.client.get(), F_SETFL, 0) == 0);
  linger lg{1, 30};
  REQUIRE(setsockopt(s.client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  return s;
}

/// A close-on-exec AF_UNIX socketpair of the given type.
std::pair<UniqueFd, UniqueFd> pair_of(int type) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

/// Sends payload with fd attached; the errno of a failed sendmsg, or 0.
int send_with_fd(int via, std::string_view payload, int fd) {
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return ::sendmsg(via, &msg, MSG_NOSIGNAL) >= 0 ? 0 : errno;
}

/// Reads server until the client's close is over (EOF).
void drain(int server) {
  char buf[65536];
  while (::read(server, buf, sizeof buf) > 0) {
  }
}

void wait_closed(const FdCloser& closer) {
  for (int i = 0; i < 2000 && closer.pending() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(closer.pending() == 0);
}

}  // namespace

TEST_CASE("a received socket whose close lingers is closed on the closer's thread",
          "[activation][fd_closer]") {
  // A datagram pair that accepts descriptors, as a notify socket on a kernel without
  // SO_PASSRIGHTS does.
  auto [receiver, sender] = pair_of(SOCK_DGRAM);
  LingeringSocket s = lingering_socket();
  REQUIRE(send_with_fd(sender.get(), "READY=1", s.client.get()) == 0);
  s.client.reset();  // the datagram now holds the only other reference

  FdCloser closer;
  auto note = receive_notification(receiver.get(), closer);
  REQUIRE(note);
  REQUIRE(note->has_value());
  CHECK((*note)->payload == "READY=1");
  // Had the receive closed it, it would only have returned after the linger: the close is
  // still in the closer's hands, blocked until the peer reads.
  CHECK(closer.received() == 1);
  CHECK(closer.pending() == 1);
  drain(s.server.get());
  wait_closed(closer);
}

TEST_CASE("a record with a descriptor attached hands it to the closer", "[activation][fd_closer]") {
  auto [daemon_end, instance_end] = pair_of(SOCK_SEQPACKET);
  LingeringSocket s = lingering_socket();
  REQUIRE(send_with_fd(instance_end.get(), "Accepted publickey", s.client.get()) == 0);
  s.client.reset();
  FdCloser closer;
  char buf[256];
  auto n = receive_record(daemon_end.get(), buf, sizeof buf, closer);
  REQUIRE(n);
  CHECK(std::string(buf, *n) == "Accepted publickey");
  CHECK(closer.pending() == 1);
  drain(s.server.get());
  wait_closed(closer);
  auto none = receive_record(daemon_end.get(), buf, sizeof buf, closer);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == EAGAIN);
}

TEST_CASE(
    "where the kernel has SO_PASSRIGHTS, a refusing socket makes the sender's "
    "sendmsg fail",
    "[activation][fd_closer]") {
  auto [daemon_end, instance_end] = pair_of(SOCK_SEQPACKET);
  if (!refuse_passed_fds(daemon_end.get())) {
    WARN("this kernel has no SO_PASSRIGHTS (Linux 6.16+): descriptors go to the closer");
    return;
  }
  auto [r, w] = make_pipe();
  CHECK(send_with_fd(instance_end.get(), "x", w.get()) == EPERM);
  // Without a descriptor the same record goes through.
  CHECK(::send(instance_end.get(), "x", 1, 0) == 1);
}

TEST_CASE("the record pipe and the notify socket refuse descriptors where the kernel can",
          "[activation][fd_closer]") {
  auto [probe, other] = pair_of(SOCK_DGRAM);
  bool kernel_has_it = refuse_passed_fds(probe.get());
  auto pipe = make_record_pipe();
  REQUIRE(pipe);
  auto [r, w] = make_pipe();
  int refused = send_with_fd(pipe->second.get(), "x", w.get());
  CHECK(refused == (kernel_has_it ? EPERM : 0));
}

TEST_CASE("descriptors still queued when the closer goes are closed", "[activation][fd_closer]") {
  auto [r, w] = make_pipe();
  {
    FdCloser closer;
    closer.close_later(std::move(w));
  }
  // The write side is closed (by the thread or by the destructor): EOF at once.
  CHECK(read_all(r.get(), std::chrono::seconds(5)).empty());
}

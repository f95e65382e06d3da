// tcp_bytes_received: what a TCP client has sent, read from usherd's side of the connection.
#include "activation/tcp_progress.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <utility>

#include "activation/accept.h"
#include "activation/listener.h"
#include "activation/socket_address.h"
#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;
using namespace std::chrono_literals;

namespace {

// A TCP connection on loopback: the client's end and the server's, as usherd accepts it.
std::pair<UniqueFd, Accepted> loopback_connection() {
  ListenSpec spec;
  spec.host = "127.0.0.1";
  spec.port = 0;
  auto listener = open_listener(spec);
  REQUIRE(listener);
  SocketAddress bound = local_address(listener->fd.get());
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(::connect(client.get(), bound.get(), bound.size()) == 0);
  REQUIRE(wait_readable(listener->fd.get(), 10s));
  auto conn = accept_connection(listener->fd.get(), bound);
  REQUIRE(conn);
  return {std::move(client), std::move(*conn)};
}

}  // namespace

TEST_CASE("the bytes a TCP client has sent are read from the server's side, unread or read",
          "[activation][tcp_progress]") {
  auto [client, conn] = loopback_connection();
  CHECK(tcp_bytes_received(conn.fd.get()) == 0u);  // connected, nothing sent

  const std::string banner = "SSH-2.0-OpenSSH_10.0\r\n";
  REQUIRE(::send(client.get(), banner.data(), banner.size(), 0) ==
          static_cast<ssize_t>(banner.size()));
  REQUIRE(wait_readable(conn.fd.get(), 10s));
  CHECK(tcp_bytes_received(conn.fd.get()) == banner.size());  // still unread: counted
  char buffer[64];
  REQUIRE(::recv(conn.fd.get(), buffer, sizeof buffer, 0) == static_cast<ssize_t>(banner.size()));
  CHECK(tcp_bytes_received(conn.fd.get()) == banner.size());  // read: the same count

  // A second fd of the same connection (usherd keeps a copy while its instance starts).
  UniqueFd copy(::fcntl(conn.fd.get(), F_DUPFD_CLOEXEC, 3));
  REQUIRE(::send(client.get(), "x", 1, 0) == 1);
  REQUIRE(wait_readable(copy.get(), 10s));
  CHECK(tcp_bytes_received(copy.get()) == banner.size() + 1);
}

TEST_CASE("a socket that is not TCP has no byte count", "[activation][tcp_progress]") {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  UniqueFd a(pair[0]), b(pair[1]);
  CHECK_FALSE(tcp_bytes_received(a.get()));
  CHECK_FALSE(tcp_bytes_received(-1));
}

TEST_CASE("a client that hangs up is seen from the server's side, its bytes still readable",
          "[activation][tcp_progress]") {
  auto [client, conn] = loopback_connection();
  REQUIRE(::send(client.get(), "hello\n", 6, 0) == 6);
  REQUIRE(wait_readable(conn.fd.get(), 10s));
  CHECK_FALSE(peer_hung_up(conn.fd.get()));  // data waiting is not a hang-up
  client.reset();
  // The FIN arrives after the close returns: wait for it as an event (POLLRDHUP).
  struct pollfd p {
    conn.fd.get(), POLLRDHUP, 0
  };
  REQUIRE(::poll(&p, 1, 10000) == 1);
  CHECK(peer_hung_up(conn.fd.get()));
  char buffer[16];
  CHECK(::recv(conn.fd.get(), buffer, sizeof buffer, 0) == 6);  // what it sent stays
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  UniqueFd a(pair[0]), b(pair[1]);
  CHECK_FALSE(peer_hung_up(a.get()));
}

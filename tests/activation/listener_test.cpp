// Listeners and accept on loopback, unix paths and the abstract namespace.
#include "activation/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "activation/accept.h"
#include "activation/socket_address.h"
#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

namespace {

ListenSpec inet_spec(std::string host) {
  ListenSpec spec;
  spec.host = std::move(host);
  spec.port = 0;
  return spec;
}

// Connects a blocking TCP client to address (family and port taken from it).
UniqueFd connect_to(const SocketAddress& address) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  REQUIRE(::connect(fd.get(), address.get(), address.size()) == 0);
  return fd;
}

SocketAddress ipv4_loopback(std::uint16_t port) {
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  in4.sin_port = htons(port);
  in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&in4), sizeof in4);
}

int int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  REQUIRE(getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

bool has_cloexec_and_nonblock(int fd) {
  return (fcntl(fd, F_GETFD) & FD_CLOEXEC) && (fcntl(fd, F_GETFL) & O_NONBLOCK);
}

bool has_cloexec_and_blocks(int fd) {
  return (fcntl(fd, F_GETFD) & FD_CLOEXEC) && !(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

// A fresh private directory under /tmp, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char pattern[] = "/tmp/usherd-listener-XXXXXX";
    REQUIRE(mkdtemp(pattern));
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

Accepted accept_one(int listen_fd, const SocketAddress& listener_local = {}) {
  REQUIRE(wait_readable(listen_fd, std::chrono::seconds(10)));
  auto accepted = accept_connection(listen_fd, listener_local);
  REQUIRE(accepted);
  return std::move(*accepted);
}

}  // namespace

TEST_CASE("a 127.0.0.1 listener on port 0 reports the port the kernel chose",
          "[activation][listener]") {
  auto listener = open_listener(inet_spec("127.0.0.1"));
  REQUIRE(listener);
  auto local = local_address(listener->fd.get());
  CHECK(local.family() == AF_INET);
  CHECK(local.port() != 0);
  CHECK(listener->bound == "127.0.0.1:" + std::to_string(local.port()));
  CHECK(has_cloexec_and_nonblock(listener->fd.get()));
  CHECK(int_option(listener->fd.get(), SOL_SOCKET, SO_REUSEADDR) == 1);
  CHECK(int_option(listener->fd.get(), SOL_SOCKET, SO_ACCEPTCONN) == 1);
}

TEST_CASE("a ::1 listener reports a bracketed address and accepts an IPv6 peer",
          "[activation][listener][accept]") {
  ListenSpec spec = inet_spec("::1");
  spec.no_delay = true;
  spec.keep_alive = true;
  auto listener = open_listener(spec);
  REQUIRE(listener);
  auto local = local_address(listener->fd.get());
  CHECK(listener->bound == "[::1]:" + std::to_string(local.port()));
  CHECK(int_option(listener->fd.get(), SOL_SOCKET, SO_KEEPALIVE) == 1);

  auto client = connect_to(local);
  auto accepted = accept_one(listener->fd.get());
  auto client_local = local_address(client.get());
  CHECK(accepted.peer.to_string() == "[::1]:" + std::to_string(client_local.port()));
  CHECK(accepted.peer.ip_text() == "::1");
  // Handed to the service as it expects it: blocking (and not inherited by anything else).
  CHECK(has_cloexec_and_blocks(accepted.fd.get()));
  CHECK(instance_part(accepted.local, accepted.peer) ==
        "::1:" + std::to_string(local.port()) + "-::1:" + std::to_string(client_local.port()));

  // Bound to one address: every connection's local address is the listener's, known without
  // asking each one.
  SocketAddress fixed = fixed_local_address(listener->fd.get());
  CHECK(fixed.to_string() == local.to_string());
  auto second_client = connect_to(local);
  auto second = accept_one(listener->fd.get(), fixed);
  CHECK(second.local.to_string() == local_address(second.fd.get()).to_string());
}

TEST_CASE("a port-only listener is dual-stack and unmaps an IPv4 peer at accept",
          "[activation][listener][accept]") {
  auto listener = open_listener(inet_spec(""));
  REQUIRE(listener);
  auto local = local_address(listener->fd.get());
  REQUIRE(local.family() == AF_INET6);
  CHECK(listener->bound == "[::]:" + std::to_string(local.port()));
  CHECK(int_option(listener->fd.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);

  auto client = connect_to(ipv4_loopback(local.port()));
  auto accepted = accept_one(listener->fd.get());
  auto client_port = local_address(client.get()).port();
  CHECK(accepted.peer.family() == AF_INET);
  CHECK(accepted.peer.to_string() == "127.0.0.1:" + std::to_string(client_port));
  CHECK(accepted.local.to_string() == "127.0.0.1:" + std::to_string(local.port()));
  CHECK(instance_part(accepted.local, accepted.peer) ==
        "127.0.0.1:" + std::to_string(local.port()) + "-127.0.0.1:" + std::to_string(client_port));
  // A wildcard accepts for every local address: each connection is asked for its own.
  CHECK(fixed_local_address(listener->fd.get()).family() == AF_UNSPEC);
}

TEST_CASE("a port-only listener with BindIPv6Only=ipv6-only refuses IPv4 clients",
          "[activation][listener]") {
  ListenSpec spec = inet_spec("");
  spec.bind_ipv6_only = ListenSpec::BindIPv6Only::ipv6_only;
  auto listener = open_listener(spec);
  REQUIRE(listener);
  CHECK(int_option(listener->fd.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
  auto target = ipv4_loopback(local_address(listener->fd.get()).port());
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK(::connect(client.get(), target.get(), target.size()) != 0);
}

TEST_CASE("accept on an empty queue reports the raw EAGAIN", "[activation][accept]") {
  auto listener = open_listener(inet_spec("127.0.0.1"));
  REQUIRE(listener);
  auto accepted = accept_connection(listener->fd.get());
  REQUIRE_FALSE(accepted);
  CHECK(accepted.error().code == EAGAIN);
}

TEST_CASE("a host that is not a numeric address is refused", "[activation][listener]") {
  auto listener = open_listener(inet_spec("localhost"));
  REQUIRE_FALSE(listener);
  CHECK(listener.error().code == EINVAL);
}

TEST_CASE("a datagram listener binds without listening", "[activation][listener]") {
  ListenSpec spec = inet_spec("127.0.0.1");
  spec.type = ListenSpec::Type::datagram;
  auto listener = open_listener(spec);
  REQUIRE(listener);
  CHECK(int_option(listener->fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
  CHECK(listener->bound.rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE(
    "a unix path listener creates its directories, sets mode and owner, and replaces a "
    "stale socket",
    "[activation][listener][unix]") {
  TempDir dir;
  std::string path = (dir.path / "a" / "b" / "x.sock").string();
  ListenSpec spec;
  spec.family = ListenSpec::Family::unix_path;
  spec.path = path;
  spec.socket_mode = 0600;
  spec.directory_mode = 0711;
  if (geteuid() == 0) {
    spec.socket_uid = 65534;
    spec.socket_gid = 65534;
  }
  auto first = open_listener(spec);
  REQUIRE(first);
  CHECK(first->bound == path);
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  if (geteuid() == 0) {
    CHECK(st.st_uid == 65534);
    CHECK(st.st_gid == 65534);
  }
  struct stat dst {};
  REQUIRE(stat((dir.path / "a" / "b").c_str(), &dst) == 0);
  CHECK((dst.st_mode & 07777) == 0711);

  // The first listener goes away (a crash): its socket file stays behind, stale.
  first->fd.reset();
  auto second = open_listener(spec);
  REQUIRE(second);
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto target = local_address(second->fd.get());
  REQUIRE(::connect(client.get(), target.get(), target.size()) == 0);
  auto accepted = accept_one(second->fd.get());
  CHECK(accepted.peer.to_string() == "unnamed");
  CHECK(instance_part(accepted.local, accepted.peer, accepted.fd.get()) ==
        std::to_string(getpid()) + "-" + std::to_string(geteuid()));
  CHECK(instance_part(accepted.local, accepted.peer) == "unknown");
}

TEST_CASE("a unix path listener never removes a file that is not a socket",
          "[activation][listener][unix]") {
  TempDir dir;
  std::string path = (dir.path / "regular").string();
  std::ofstream(path) << "keep me";
  ListenSpec spec;
  spec.family = ListenSpec::Family::unix_path;
  spec.path = path;
  auto listener = open_listener(spec);
  REQUIRE_FALSE(listener);
  CHECK(listener.error().code == EEXIST);
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  CHECK(content == "keep me");
}

TEST_CASE("an abstract listener is spelled with '@' and accepts", "[activation][listener][unix]") {
  ListenSpec spec;
  spec.family = ListenSpec::Family::unix_abstract;
  spec.path = "usherd-test-" + std::to_string(getpid());
  auto listener = open_listener(spec);
  REQUIRE(listener);
  CHECK(listener->bound == "@" + spec.path);
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto target = local_address(listener->fd.get());
  REQUIRE(::connect(client.get(), target.get(), target.size()) == 0);
  auto accepted = accept_one(listener->fd.get());
  CHECK(accepted.local.to_string() == "@" + spec.path);
}

TEST_CASE("wildcard addresses are told from specific ones", "[activation][address]") {
  auto v6 = [](const char* text) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(22);
    REQUIRE(inet_pton(AF_INET6, text, &in6.sin6_addr) == 1);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  };
  auto v4 = [](const char* text) {
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(22);
    REQUIRE(inet_pton(AF_INET, text, &in4.sin_addr) == 1);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&in4), sizeof in4);
  };
  CHECK(v4("0.0.0.0").is_wildcard());
  CHECK(v6("::").is_wildcard());
  CHECK(v6("::ffff:0.0.0.0").is_wildcard());
  CHECK_FALSE(v4("127.0.0.1").is_wildcard());
  CHECK_FALSE(v6("::1").is_wildcard());
  CHECK_FALSE(v6("::ffff:127.0.0.1").is_wildcard());
  CHECK_FALSE(SocketAddress().is_wildcard());
}

TEST_CASE("socket addresses are spelled as usherd logs them", "[activation][address]") {
  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  mapped.sin6_port = htons(51234);
  REQUIRE(inet_pton(AF_INET6, "::ffff:192.0.2.7", &mapped.sin6_addr) == 1);
  SocketAddress address(reinterpret_cast<const sockaddr*>(&mapped), sizeof mapped);
  CHECK(address.is_v4_mapped());
  CHECK(address.to_string() == "[::ffff:192.0.2.7]:51234");
  CHECK(address.unmapped().to_string() == "192.0.2.7:51234");
  CHECK(address.unmapped().family() == AF_INET);
  CHECK(address.unmapped().port() == 51234);
  CHECK(SocketAddress().to_string() == "unknown");
  CHECK_FALSE(SocketAddress().is_inet());

  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "/run/x.sock");
  SocketAddress path(reinterpret_cast<const sockaddr*>(&un),
                     offsetof(sockaddr_un, sun_path) + std::strlen(un.sun_path) + 1);
  CHECK(path.to_string() == "/run/x.sock");
  CHECK(path.ip_text().empty());
  CHECK(path.port() == 0);
}

TEST_CASE("an AF_UNIX peer's address is escaped into one printable token",
          "[activation][address]") {
  auto unix_address = [](std::string_view path) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    return SocketAddress(reinterpret_cast<const sockaddr*>(&un),
                         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size()));
  };
  CHECK(unix_address("/tmp/x\n2026 info accept forged").to_string() ==
        "/tmp/x\\n2026\\x20info\\x20accept\\x20forged");
  CHECK(unix_address(std::string_view("\0evil\x1b[2J", 9)).to_string() == "@evil\\x1b[2J");
  CHECK(unix_address("/run/ok.sock").to_string() == "/run/ok.sock");
}

TEST_CASE("DeferAcceptSec= hands over a connection only once its client has sent data",
          "[activation][listener]") {
  ListenSpec spec = inet_spec("127.0.0.1");
  spec.defer_accept_s = 3;
  auto listener = open_listener(spec);
  REQUIRE(listener);
  int value = 0;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(listener->fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &value, &len) == 0);
  CHECK(value > 0);
  SocketAddress bound = local_address(listener->fd.get());
  UniqueFd silent = connect_to(bound);
  UniqueFd talker = connect_to(bound);
  REQUIRE(::send(talker.get(), "SSH-2.0-x\r\n", 11, 0) == 11);
  // The talker's connection is handed over once its data arrives; the silent one waits.
  REQUIRE(test::wait_readable(listener->fd.get(), std::chrono::seconds(10)));
  auto first = accept_connection(listener->fd.get(), bound);
  REQUIRE(first);
  CHECK(first->peer.to_string() == local_address(talker.get()).to_string());
  auto none = accept_connection(listener->fd.get(), bound);
  CHECK_FALSE(none);
}

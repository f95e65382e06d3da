// Socket address spellings (see socket_address.h).
#include "activation/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "base/escape.h"

namespace usherd::activation {

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) {
  length_ = std::min<socklen_t>(len, sizeof storage_);
  std::memcpy(&storage_, sa, length_);
}

bool SocketAddress::is_inet() const {
  return family() == AF_INET || family() == AF_INET6;
}

bool SocketAddress::is_v4_mapped() const {
  if (family() != AF_INET6) return false;
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
  return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
}

SocketAddress SocketAddress::unmapped() const {
  if (!is_v4_mapped()) return *this;
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  in4.sin_port = in6->sin6_port;
  std::memcpy(&in4.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&in4), sizeof in4);
}

bool SocketAddress::is_wildcard() const {
  SocketAddress plain = unmapped();
  if (plain.family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&plain.storage_)->sin_addr.s_addr ==
           htonl(INADDR_ANY);
  if (plain.family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(
        &reinterpret_cast<const sockaddr_in6*>(&plain.storage_)->sin6_addr);
  return false;
}

std::string SocketAddress::ip_text() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(&storage_);
    inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
  } else if (family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  }
  return text;
}

std::uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

namespace {
// sun_path holds at most 108 bytes; all of them are shown.
constexpr std::size_t kMaxShown = sizeof(sockaddr_un::sun_path);
}  // namespace

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET:
      return ip_text() + ":" + std::to_string(port());
    case AF_INET6:
      return "[" + ip_text() + "]:" + std::to_string(port());
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      std::size_t path_len = length_ - offsetof(sockaddr_un, sun_path);
      if (length_ <= offsetof(sockaddr_un, sun_path) || path_len == 0) return "unnamed";
      // The client chose these bytes (its own bind()): escaped, spaces too, so the address
      // is one printable token in a log line, a key=value field and usherctl's table.
      if (un->sun_path[0] == '\0')
        return "@" +
               escape_untrusted(std::string_view(un->sun_path + 1, path_len - 1), kMaxShown, true);
      return escape_untrusted(std::string_view(un->sun_path, strnlen(un->sun_path, path_len)),
                              kMaxShown, true);
    }
    default:
      return "unknown";
  }
}

SocketAddress local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress(reinterpret_cast<const sockaddr*>(&ss), len);
}

SocketAddress peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress(reinterpret_cast<const sockaddr*>(&ss), len);
}

std::string instance_part(const SocketAddress& local, const SocketAddress& peer, int fd) {
  // systemd's instance_from_socket(): IP families as "LOCAL:PORT-PEER:PORT" with IPv6 in
  // plain text (no brackets), AF_UNIX as the peer's "PID-UID".
  SocketAddress l = local.unmapped();
  SocketAddress p = peer.unmapped();
  if (l.is_inet() && p.is_inet())
    return l.ip_text() + ":" + std::to_string(l.port()) + "-" + p.ip_text() + ":" +
           std::to_string(p.port());
  if (fd >= 0) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
      return std::to_string(cred.pid) + "-" + std::to_string(cred.uid);
  }
  return "unknown";
}

}  // namespace usherd::activation

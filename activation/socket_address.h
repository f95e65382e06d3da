// SocketAddress: a socket address as the kernel gave it (sockaddr_storage + length), with the
// spellings the rest of usherd logs and hands to services.
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack listener reports for an IPv4 client) is
// unmapped to AF_INET at accept (see accept.h), so policy, instance names, REMOTE_ADDR and
// logs all see "192.0.2.7". Spellings: "127.0.0.1:51234", "[::1]:51234", "/run/x.sock",
// "@abstract", "unnamed".
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace usherd::activation {

/// One socket address (any family) and its length.
class SocketAddress {
 public:
  SocketAddress() = default;
  /// Copies len bytes of sa (truncated to sockaddr_storage).
  SocketAddress(const sockaddr* sa, socklen_t len);

  /// The address for bind/connect/sendto.
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  /// Its length in bytes.
  socklen_t size() const { return length_; }
  /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
  int family() const { return length_ == 0 ? AF_UNSPEC : storage_.ss_family; }
  /// True for AF_INET and AF_INET6.
  bool is_inet() const;
  /// True for an AF_INET6 address of the form ::ffff:a.b.c.d.
  bool is_v4_mapped() const;
  /// The IPv4 address for a v4-mapped one; itself otherwise.
  SocketAddress unmapped() const;
  /// True for 0.0.0.0, :: and ::ffff:0.0.0.0 (any port): bound there, a socket accepts
  /// connections for every local address.
  bool is_wildcard() const;
  /// "127.0.0.1" / "::1" (no brackets); "" for non-IP families.
  std::string ip_text() const;
  /// The port in host order; 0 for non-IP families.
  std::uint16_t port() const;
  /// "127.0.0.1:51234", "[::1]:51234", "/path", "@abstract", "unnamed", or "unknown"; an
  /// AF_UNIX path (the peer's choice) escaped by escape_untrusted(), spaces included.
  std::string to_string() const;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

/// getsockname(fd); an empty address when it fails.
SocketAddress local_address(int fd);

/// getpeername(fd); an empty address when it fails.
SocketAddress peer_address(int fd);

/// The connection part of a systemd Accept=yes instance name (without the counter):
/// "127.0.0.1:22-127.0.0.1:51234", "::1:22-::1:51234" (IPv6 without brackets), and for AF_UNIX
/// "PID-UID" of the peer from SO_PEERCRED on fd, or "unknown".
std::string instance_part(const SocketAddress& local, const SocketAddress& peer, int fd = -1);

}  // namespace usherd::activation

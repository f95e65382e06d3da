// Listening sockets, opened the way systemd's socket units open them (ListenStream=,
// ListenDatagram=, ListenSequentialPacket= with their socket options).
//
// Invariants: every fd is SOCK_CLOEXEC | SOCK_NONBLOCK from birth; Listener::bound is the
// address the kernel actually bound (so port 0 reports the chosen port); a port-only spec
// binds IPv6 any, dual-stack unless ipv6_only, and falls back to 0.0.0.0 on a machine
// without IPv6. A unix path's parent directories are created, and a stale socket (only a
// socket, never another kind of file) is removed before bind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// What to listen on and with which options (systemd .socket keys in brackets).
struct ListenSpec {
  /// Socket type [ListenStream= / ListenDatagram= / ListenSequentialPacket=].
  enum class Type { stream, datagram, seqpacket };
  /// Address family: IP, a path in the file system, or Linux's abstract namespace.
  enum class Family { inet, unix_path, unix_abstract };
  /// [BindIPv6Only=]: default_ leaves the kernel's setting for explicit IPv6 hosts and means
  /// dual-stack for a port-only spec.
  enum class BindIPv6Only { default_, both, ipv6_only };

  Type type = Type::stream;      ///< socket type
  Family family = Family::inet;  ///< address family
  std::string host;              ///< numeric IPv4/IPv6 ("[::1]" accepted); "" = any
  std::uint16_t port = 0;        ///< 0 = the kernel picks
  std::string path;              ///< unix path, or the abstract name without '@'
  std::optional<int> backlog;    ///< [Backlog=]; unset = net.core.somaxconn
  BindIPv6Only bind_ipv6_only = BindIPv6Only::default_;  ///< [BindIPv6Only=]
  bool reuse_port = false;                               ///< [ReusePort=] SO_REUSEPORT
  bool free_bind = false;                                ///< [FreeBind=] IP_FREEBIND
  bool keep_alive = false;                               ///< [KeepAlive=] SO_KEEPALIVE
  bool no_delay = false;                                 ///< [NoDelay=] TCP_NODELAY
  int defer_accept_s = 0;           ///< [DeferAcceptSec=] TCP_DEFER_ACCEPT, whole seconds (0: off)
  std::optional<uid_t> socket_uid;  ///< [SocketUser=] owner of a unix path
  std::optional<gid_t> socket_gid;  ///< [SocketGroup=] group of a unix path
  mode_t socket_mode = 0666;        ///< [SocketMode=]
  mode_t directory_mode = 0755;     ///< [DirectoryMode=] for created parent directories
};

/// An open listening (or bound datagram) socket.
struct Listener {
  UniqueFd fd;        ///< CLOEXEC | NONBLOCK
  std::string bound;  ///< "127.0.0.1:41234", "[::]:22", "/run/x.sock", "@name"
};

/// Opens, configures, binds and (for stream/seqpacket) listens.
Result<Listener> open_listener(const ListenSpec& spec);

/// The backlog used when a spec names none: net.core.somaxconn, or 4096 if unreadable.
int default_backlog();

}  // namespace usherd::activation

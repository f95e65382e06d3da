// accept_connection: one accept4(SOCK_CLOEXEC) on a listening socket, with both ends'
// addresses, the peer unmapped from ::ffff:a.b.c.d to IPv4 at once (policy, instance names,
// REMOTE_ADDR and logs all see the IPv4 form). The connection is blocking, as the service it
// is handed to expects it (inetd's and systemd's services read and write it plainly); usherd
// itself only ever sends a drop message on it, with MSG_DONTWAIT.
//
// On failure Error::code is the raw errno (EAGAIN, EMFILE, ENFILE, ENOMEM, ECONNABORTED...)
// so the loop can tell "re-arm" from "pause this listener".
#pragma once

#include <cerrno>

#include "activation/socket_address.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// One accepted connection.
struct Accepted {
  UniqueFd fd;          ///< CLOEXEC, blocking
  SocketAddress peer;   ///< unmapped
  SocketAddress local;  ///< unmapped
};

/// Accepts one pending connection. listener_local, when not empty, is the listening socket's
/// own address and is bound to one IP address (not a wildcard, see fixed_local_address()):
/// every connection it accepts has that local address, so no getsockname() is needed.
Result<Accepted> accept_connection(int listen_fd, const SocketAddress& listener_local = {});

/// The local address every connection accepted on listen_fd will have: its own when it is an
/// IP socket bound to one address; empty (ask each connection) for a wildcard or AF_UNIX.
SocketAddress fixed_local_address(int listen_fd);

/// True for the accept4() errors that mean this process ran out of something (EMFILE,
/// ENFILE, ENOMEM, ENOBUFS): the connection stays queued and accepting again at once would
/// fail again, so the caller pauses that listening socket instead of spinning on it.
inline bool is_resource_exhaustion(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS;
}

}  // namespace usherd::activation

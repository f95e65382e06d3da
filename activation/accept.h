// accept_connection: one accept4(SOCK_CLOEXEC | SOCK_NONBLOCK) on a listening socket, with
// both ends' addresses, the peer unmapped from ::ffff:a.b.c.d to IPv4 at once (policy,
// instance names, REMOTE_ADDR and logs all see the IPv4 form).
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
  UniqueFd fd;          ///< CLOEXEC | NONBLOCK
  SocketAddress peer;   ///< unmapped
  SocketAddress local;  ///< unmapped
};

/// Accepts one pending connection.
Result<Accepted> accept_connection(int listen_fd);

/// True for the accept4() errors that mean this process ran out of something (EMFILE,
/// ENFILE, ENOMEM, ENOBUFS): the connection stays queued and accepting again at once would
/// fail again, so the caller pauses that listening socket instead of spinning on it.
inline bool is_resource_exhaustion(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS;
}

}  // namespace usherd::activation

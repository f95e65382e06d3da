// accept_connection (see accept.h).
#include "activation/accept.h"

#include <sys/socket.h>

namespace usherd::activation {

Result<Accepted> accept_connection(int listen_fd, const SocketAddress& listener_local) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
  if (fd < 0) return fail_errno("accept");
  Accepted accepted;
  accepted.fd = UniqueFd(fd);
  accepted.peer = SocketAddress(reinterpret_cast<const sockaddr*>(&ss), len).unmapped();
  accepted.local =
      listener_local.family() != AF_UNSPEC ? listener_local : local_address(fd).unmapped();
  return accepted;
}

SocketAddress fixed_local_address(int listen_fd) {
  SocketAddress bound = local_address(listen_fd).unmapped();
  if (!bound.is_inet() || bound.is_wildcard()) return {};
  return bound;
}

}  // namespace usherd::activation

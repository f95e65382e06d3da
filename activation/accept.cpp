// accept_connection (see accept.h).
#include "activation/accept.h"

#include <sys/socket.h>

namespace usherd::activation {

Result<Accepted> accept_connection(int listen_fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return fail_errno("accept");
  Accepted accepted;
  accepted.fd = UniqueFd(fd);
  accepted.peer = SocketAddress(reinterpret_cast<const sockaddr*>(&ss), len).unmapped();
  accepted.local = local_address(fd).unmapped();
  return accepted;
}

}  // namespace usherd::activation

// See tcp_progress.h. <linux/tcp.h> rather than glibc's <netinet/tcp.h>, whose struct
// tcp_info stops before tcpi_bytes_received; the two headers cannot share a file.
#include "activation/tcp_progress.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstddef>

namespace usherd::activation {

std::optional<std::uint64_t> tcp_bytes_received(int fd) {
  struct tcp_info info {};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  if (len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
    return std::nullopt;
  return info.tcpi_bytes_received;
}

bool peer_hung_up(int fd) {
  struct pollfd p {
    fd, POLLRDHUP, 0
  };
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace usherd::activation

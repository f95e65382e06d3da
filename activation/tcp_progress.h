// How far a TCP client has got: the bytes it has sent on a connection (TCP_INFO's
// tcpi_bytes_received, Linux 4.1+), read from any fd of that connection.
#pragma once

#include <cstdint>
#include <optional>

namespace usherd::activation {

/// The payload bytes received from the peer so far; nullopt when fd is not a TCP socket (or
/// the kernel does not report the count).
std::optional<std::uint64_t> tcp_bytes_received(int fd);

}  // namespace usherd::activation

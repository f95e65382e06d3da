// How far a TCP client has got: the bytes it has sent on a connection (TCP_INFO's
// tcpi_bytes_received, Linux 4.1+), and whether it has hung up, read from any fd of that
// connection.
#pragma once

#include <cstdint>
#include <optional>

namespace usherd::activation {

/// The payload bytes received from the peer so far; nullopt when fd is not a TCP socket (or
/// the kernel does not report the count).
std::optional<std::uint64_t> tcp_bytes_received(int fd);

/// Whether the peer has closed its side (or reset the connection): one poll() that does not
/// wait, for POLLRDHUP. What it sent before stays readable by whoever holds the connection.
bool peer_hung_up(int fd);

}  // namespace usherd::activation

// The sd_notify(3) protocol, both ends: usherd's notify socket (one AF_UNIX SOCK_DGRAM socket
// with SO_PASSCRED, so every datagram carries the kernel-verified pid/uid/gid of its sender)
// and the client side used by `usherctl notify`.
//
// Readiness ends a startup, so it must not be forgeable: attribution rests on the sender's
// credentials (checked by the supervisor against the instance's process tree), never on who
// can write to the socket, which is mode 0666 so services under User= reach it. Descriptors
// passed with SCM_RIGHTS are refused by the kernel where it can (SO_PASSRIGHTS) and otherwise
// closed off the loop by an FdCloser (fd_closer.h: closing one can block); oversized
// datagrams and datagrams with a NUL byte are ignored (notify_problem).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "activation/fd_closer.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// Largest payload kept; longer datagrams are cut here and marked truncated.
inline constexpr std::size_t kNotifyPayloadMax = 4096;

/// One datagram received on the notify socket.
struct Notification {
  std::optional<ucred> sender;  ///< kernel-attached credentials; nullopt when missing
  /// The sender's identity from the pidfd the kernel attached (SO_PASSPIDFD, Linux 6.5+): its
  /// inode where pidfds live on pidfs (6.9+), unique to one process for the life of the
  /// system. 0 when unknown. Unlike sender->pid, it cannot name a later process that was given
  /// the same pid after the sender was reaped.
  std::uint64_t sender_pidfd_inode = 0;
  std::string payload;     ///< at most kNotifyPayloadMax bytes
  bool truncated = false;  ///< the datagram was longer than kNotifyPayloadMax
};

/// Creates the notify socket at path ("@name" = abstract): a stale socket there is removed,
/// the node gets mode 0666, SO_PASSCRED is on, SO_PASSPIDFD too where the kernel has it, fd passing
/// is refused where the kernel can (refuse_passed_fds), the receive buffer is enlarged; CLOEXEC and
/// NONBLOCK.
Result<UniqueFd> open_notify_socket(const std::string& path);

/// Receives one datagram; nullopt when none is waiting (EAGAIN). Descriptors attached to it
/// go to closer.
Result<std::optional<Notification>> receive_notification(int fd, FdCloser& closer);

/// Why a datagram is ignored whoever sent it, or nullptr when it may be read: "truncated"
/// (longer than kNotifyPayloadMax), "embedded NUL" (systemd ignores such datagrams too: a
/// payload is text, and a NUL would let a C reader see a different message than we do).
const char* notify_problem(const Notification& note);

/// Splits a payload into KEY=VALUE pairs (newline-separated); lines without '=' or with an
/// empty key are skipped.
std::vector<std::pair<std::string, std::string>> parse_notify_payload(std::string_view payload);

/// Sends payload to the notify socket at socket_path ("@name" = abstract). With as_pid the
/// datagram's SCM_CREDENTIALS name that pid (as systemd-notify names its parent, so a helper
/// that exits at once is still attributed); the kernel allows a foreign pid only with
/// CAP_SYS_ADMIN, and on EPERM the datagram is sent with the caller's own credentials.
Result<void> send_notification(const std::string& socket_path, std::string_view payload,
                               std::optional<pid_t> as_pid = std::nullopt);

}  // namespace usherd::activation

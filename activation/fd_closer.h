// FdCloser and refuse_passed_fds(): what usherd does with descriptors it never asked for.
//
// The notify socket is mode 0666 and every instance writes its stderr into a capture socket,
// so any local user and any instance can attach descriptors (SCM_RIGHTS) to what it sends.
// Receiving one makes usherd hold the last reference to the sender's file, and closing that
// reference runs the file's release in usherd: a TCP socket with SO_LINGER {1, N} and unsent
// data blocks close() for N seconds, a file on a stalled FUSE or NFS mount for as long as the
// server likes. On the event loop that would freeze every socket, so:
//
// - refuse_passed_fds() turns fd passing off on a receiving socket (SO_PASSRIGHTS = 0, Linux
//   6.16+): the sender's sendmsg() then fails with EPERM and nothing ever reaches usherd;
// - where the kernel is older, a receive takes the descriptors out of the message itself
//   (recvmsg with room for SCM_MAX_FD of them; a plain recv() would make the kernel drop them
//   in usherd's own context) and gives them to an FdCloser, whose thread closes them off the
//   loop. The thread owns nothing but its queue; one mutex guards the hand-over, the only lock
//   in usherd, held for a vector swap.
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// Closes descriptors on a thread of its own, so that a close() that blocks never blocks the
/// caller. Started on first use.
class FdCloser {
 public:
  FdCloser() = default;
  /// Closes what is still queued (on the calling thread) after the thread has stopped; a
  /// close stuck in the thread at that moment is left to the process's exit.
  ~FdCloser();
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

  /// Queues fd for closing; never blocks on the descriptor itself.
  void close_later(UniqueFd fd);
  /// Descriptors queued and not yet closed.
  std::size_t pending() const;
  /// Descriptors handed over so far.
  std::size_t received() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<int> queue_;
  std::size_t in_flight_ = 0;  ///< taken by the thread and not yet closed
  std::size_t received_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

/// Turns fd passing off on a socket usherd receives on (SO_PASSRIGHTS = 0). False when the
/// kernel does not have the option (before Linux 6.16): received descriptors then go to an
/// FdCloser.
bool refuse_passed_fds(int fd);

/// The largest number of descriptors one message can carry (SCM_MAX_FD).
inline constexpr std::size_t kMaxPassedFds = 253;

/// Hands every descriptor in msg's SCM_RIGHTS messages to closer.
void dispose_passed_fds(const msghdr& msg, FdCloser& closer);

}  // namespace usherd::activation

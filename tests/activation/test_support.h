// Shared helpers for the activation tests: reads and waits with a deadline (a test that
// would hang fails instead), and small fd utilities. No sleeps: every wait is on an event.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include "tests/catch.h"

#include "activation/process.h"
#include "base/unique_fd.h"

namespace usherd::activation::test {

/// Waits until fd is readable or the deadline passes; false on timeout.
inline bool wait_readable(int fd, std::chrono::milliseconds deadline) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int rc = ::poll(&p, 1, static_cast<int>(deadline.count()));
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0;
  }
}

/// Reads fd until EOF; fails the test if the deadline passes first.
inline std::string read_all(int fd, std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  std::string out;
  char buffer[4096];
  for (;;) {
    REQUIRE(wait_readable(fd, deadline));
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    REQUIRE(n >= 0);
    if (n == 0) return out;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

/// Waits (poll on the pidfd) for the process to end and reaps it.
inline ExitStatus wait_exit(int pidfd,
                            std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  REQUIRE(wait_readable(pidfd, deadline));
  auto status = try_reap(pidfd);
  REQUIRE(status);
  REQUIRE(status->has_value());
  return **status;
}

/// A close-on-exec pipe: {read end, write end}.
inline std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

/// A close-on-exec AF_UNIX stream socketpair.
inline std::pair<UniqueFd, UniqueFd> make_socketpair(int extra_flags = 0) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | extra_flags, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

/// /dev/null opened close-on-exec.
inline UniqueFd open_dev_null() {
  UniqueFd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  REQUIRE(fd);
  return fd;
}

/// The path of a helper program built from tests/helpers.
inline std::string helper(const std::string& name) {
  return std::string(USHERD_HELPER_DIR) + "/" + name;
}

}  // namespace usherd::activation::test

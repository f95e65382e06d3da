// okd: the trivial per-connection service every server in the benchmark runs.
//
// It writes "ok\n" to the connection on stdout (inetd convention: the socket is fd 0 and
// fd 1) and exits, so the measured time is the super-server's handoff plus one spawn, exec
// and exit of the smallest possible program. It is linked statically: dynamic loading costs
// about 0.1 ms per instance, which would hide differences between super-servers.
//
// Modes:
//   okd                     reply and exit
//   okd --hold-ms N         reply, keep the connection open for N ms, then exit
//   okd --silent --hold-ms N  hold without replying (a service that never becomes ready)
//
// Only libc system calls are used; no allocation, no iostreams, so start-up stays minimal.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace {

/// Sleeps for `ms` milliseconds, resuming after signals.
void hold_for(long ms) {
  timespec left{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&left, &left) == -1 && errno == EINTR) {
  }
}

/// Writes all of `text` to `fd`; returns false on a write error.
bool write_all(int fd, const char* text, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, text, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long hold_ms = 0;
  bool silent = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc) {
      hold_ms = std::strtol(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--silent") == 0) {
      silent = true;
    } else {
      static const char usage[] = "usage: okd [--hold-ms N] [--silent]\n";
      write_all(2, usage, sizeof usage - 1);
      return 2;
    }
  }
  static const char reply[] = "ok\n";
  if (!silent && !write_all(1, reply, sizeof reply - 1)) return 1;
  if (hold_ms > 0) hold_for(hold_ms);
  return 0;
}

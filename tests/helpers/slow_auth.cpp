// slow_auth: a per-connection login that takes its time, like sshd behind a slow
// AuthorizedKeysCommand. Run with the connection on stdin/stdout (StandardInput=socket).
//
// Usage: slow_auth DELAY_MS
//   1. waits for the client's first line (its "banner"); EOF first: exits 1 (no auth);
//   2. "authenticates" for DELAY_MS, still watching the connection; EOF meanwhile: exits 1;
//   3. sends READY=1 to $NOTIFY_SOCKET from its own pid (the instance's main process),
//      writes "ready\n" to the client;
//   4. echoes nothing, waits for EOF from the client and exits 0.
// A client that connects and sends nothing (slowloris) keeps it in step 1 until usherd's
// startup timeout stops it; a client that connects and leaves ends it before readiness.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

long long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Reads what is there; false on EOF or error. Sets *newline when a '\n' was read.
bool read_some(bool* newline) {
  char buf[512];
  ssize_t n;
  do {
    n = read(0, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  if (newline != nullptr && std::memchr(buf, '\n', static_cast<std::size_t>(n)) != nullptr)
    *newline = true;
  return true;
}

bool notify_ready() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return false;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof un.sun_path) return false;
  std::memcpy(un.sun_path, path, len);
  if (un.sun_path[0] == '@') un.sun_path[0] = '\0';  // abstract namespace
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  static constexpr char kReady[] = "READY=1";
  bool ok = sendto(fd, kReady, sizeof kReady - 1, 0, reinterpret_cast<sockaddr*>(&un), addr_len) ==
            static_cast<ssize_t>(sizeof kReady - 1);
  close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  long long delay = std::atoll(argv[1]);

  bool banner = false;
  while (!banner)
    if (!read_some(&banner)) return 1;

  for (long long deadline = now_ms() + delay;;) {
    long long left = deadline - now_ms();
    if (left <= 0) break;
    pollfd p{0, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) return 1;
    if (r > 0 && !read_some(nullptr)) return 1;
  }

  if (!notify_ready()) return 3;
  static constexpr char kAnswer[] = "ready\n";
  if (write(1, kAnswer, sizeof kAnswer - 1) != static_cast<ssize_t>(sizeof kAnswer - 1)) return 1;
  while (read_some(nullptr)) {
  }
  return 0;
}

// close_all: the seed incident in miniature. Like OpenSSH's closefrom fallback inside a
// chroot without /proc, it raises its soft RLIMIT_NOFILE to the hard limit and then calls
// close() on every fd from 3 up to that limit, one by one, timing the loop.
//
// Prints "limit N closed M elapsed_us T" to stdout (M = fds that were actually open).
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

int main() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 2;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return 3;
  long limit = sysconf(_SC_OPEN_MAX);
  auto start = std::chrono::steady_clock::now();
  long closed = 0;
  for (long fd = 3; fd < limit; ++fd)
    if (close(static_cast<int>(fd)) == 0) ++closed;
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  std::printf("limit %ld closed %ld elapsed_us %lld\n", limit, closed,
              static_cast<long long>(elapsed.count()));
  return 0;
}

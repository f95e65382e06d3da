// ctlping: times usherd's control socket from inside one process, for the status-under-flood
// scenario of bench/run.sh.
//
//   ctlping RUNTIME_DIR COUNT [COMMAND]
//
// COUNT times: connect to RUNTIME_DIR/control, send {"version":1,"command":COMMAND} (status
// by default), shut down the writing side, read the answer to EOF. Prints one line per
// request with the microseconds from connect() to EOF and the answer's size, so the figure is
// usherd's response time without usherctl's own exec and start-up. Each request has a 30 s
// deadline; exit status 1 if any request failed or was answered with "ok": false.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

// One request; returns the answer ("" on failure, with a message on stderr).
std::string ask(const std::string& path, const std::string& body) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("socket");
    return "";
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror(("connect " + path).c_str());
  } else if (::send(fd, body.data(), body.size(), MSG_NOSIGNAL) !=
             static_cast<ssize_t>(body.size())) {
    std::perror("send");
  } else {
    ::shutdown(fd, SHUT_WR);
    char buf[65536];
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      int ready = ::poll(&p, 1, 30000);
      if (ready <= 0) {
        if (ready < 0 && errno == EINTR) continue;
        std::fprintf(stderr, "no answer within 30 s\n");
        answer.clear();
        break;
      }
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      answer.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return answer;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: ctlping RUNTIME_DIR COUNT [COMMAND]\n");
    return 2;
  }
  std::string path = std::string(argv[1]) + "/control";
  long count = std::strtol(argv[2], nullptr, 10);
  std::string command = argc > 3 ? argv[3] : "status";
  std::string body = "{\"version\":1,\"command\":\"" + command + "\"}";
  int failed = 0;
  for (long i = 0; i < count; ++i) {
    auto start = Clock::now();
    std::string answer = ask(path, body);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    bool ok = answer.find("\"ok\":true") != std::string::npos;
    if (!ok) ++failed;
    std::printf("%lld\t%zu\t%s\n", static_cast<long long>(us), answer.size(), ok ? "ok" : "failed");
  }
  return failed ? 1 : 0;
}

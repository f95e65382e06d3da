// notify_probe: sends one sd_notify datagram from a chosen process of its own tree.
//
// Usage: notify_probe SOCKET_PATH self|child PAYLOAD
//   self:  this process sends, prints "sent PID", then waits for EOF on stdin.
//   child: this process forks; the child sends, prints "sent PID" and waits for EOF on stdin;
//          the parent waits for the child. Stays alive until stdin closes, so the receiver
//          can examine the sender's ancestry while it exists.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

int send_and_wait(const char* path, const char* payload) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 2;
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strncpy(un.sun_path, path, sizeof un.sun_path - 1);
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(path) + 1);
  if (sendto(fd, payload, std::strlen(payload), 0, reinterpret_cast<sockaddr*>(&un), len) < 0)
    return 3;
  std::printf("sent %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  std::string mode = argv[2];
  if (mode == "self") return send_and_wait(argv[1], argv[3]);
  pid_t child = fork();
  if (child < 0) return 4;
  if (child == 0) _exit(send_and_wait(argv[1], argv[3]));
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
}

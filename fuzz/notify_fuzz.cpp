// libFuzzer entry for the notify socket: arbitrary bytes sent as one sd_notify datagram, with
// 0 to 3 descriptors attached (SCM_RIGHTS, count from the first byte), through a real
// AF_UNIX datagram pair with SO_PASSCRED, received by receive_notification() and split by
// parse_notify_payload(), as the daemon does with every datagram. Claims:
//   - the datagram arrives with this process's kernel-verified credentials;
//   - the payload is the datagram cut at kNotifyPayloadMax, truncated exactly when longer;
//   - every passed descriptor is closed on arrival (the lowest free fd number is unchanged);
//   - notify_problem() refuses exactly the truncated datagrams and those with a NUL byte;
//   - every pair has a non-empty key without '=' or a newline, and a value without a newline,
//     and there are no more pairs than lines.
// Any crash, sanitizer report or broken claim is a bug.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "activation/notify.h"

using namespace usherd::activation;

namespace {

void claim(bool condition) {
  if (!condition) std::abort();
}

struct Pair {
  int receiver = -1;
  int sender = -1;
};

FdCloser& closer() {
  static FdCloser instance;
  return instance;
}

const Pair& sockets() {
  static const Pair pair = [] {
    int fds[2];
    claim(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    int one = 1;
    claim(setsockopt(fds[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0);
    int size = 1 << 20;
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return Pair{fds[0], fds[1]};
  }();
  return pair;
}

/// The number the next open() would get.
int lowest_free_fd() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  claim(fd >= 0);
  close(fd);
  return fd;
}

void send_datagram(int fd, std::string_view payload, int passed) {
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)] = {};
  int fds[3] = {-1, -1, -1};
  if (passed > 0) {
    for (int i = 0; i < passed; ++i) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<std::size_t>(passed));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<std::size_t>(passed));
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<std::size_t>(passed));
  }
  claim(sendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(payload.size()));
  for (int i = 0; i < passed; ++i) close(fds[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view datagram(reinterpret_cast<const char*>(data), size);
  const Pair& pair = sockets();
  int passed = size > 0 ? data[0] % 4 : 0;
  int free_before = lowest_free_fd();

  std::size_t handed_before = closer().received();
  send_datagram(pair.sender, datagram, passed);
  auto received = receive_notification(pair.receiver, closer());
  claim(received.has_value() && received->has_value());
  const Notification& note = **received;
  // Every passed descriptor went to the closer, which closes them on its own thread: once it
  // has nothing pending, none is left open.
  claim(closer().received() == handed_before + static_cast<std::size_t>(passed));
  for (int spins = 0; closer().pending() != 0; ++spins) {
    claim(spins < 10'000'000);
    sched_yield();
  }
  claim(lowest_free_fd() == free_before);

  claim(note.sender.has_value());
  claim(note.sender->pid == getpid() && note.sender->uid == getuid());
  claim(note.truncated == (size > kNotifyPayloadMax));
  claim(note.payload == datagram.substr(0, kNotifyPayloadMax));
  const char* problem = notify_problem(note);
  bool nul = note.payload.find('\0') != std::string::npos;
  claim((problem != nullptr) == (note.truncated || nul));

  std::size_t lines =
      static_cast<std::size_t>(std::count(note.payload.begin(), note.payload.end(), '\n')) + 1;
  auto pairs = parse_notify_payload(note.payload);
  claim(pairs.size() <= lines);
  for (const auto& [key, value] : pairs) {
    claim(!key.empty());
    claim(key.find('=') == std::string::npos && key.find('\n') == std::string::npos);
    claim(value.find('\n') == std::string::npos);
  }

  // Nothing else is waiting: one datagram in, one out.
  auto none = receive_notification(pair.receiver, closer());
  claim(none.has_value() && !none->has_value());
  return 0;
}

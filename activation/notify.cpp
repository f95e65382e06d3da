// Notify socket and client (see notify.h).
#include "activation/notify.h"

#include "activation/process.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

namespace usherd::activation {
namespace {

// socket(7), Linux 6.5: not yet in the headers of every release usherd builds on.
#ifndef SO_PASSPIDFD
constexpr int SO_PASSPIDFD = 76;
#endif
#ifndef SCM_PIDFD
constexpr int SCM_PIDFD = 0x04;
#endif

Result<std::pair<sockaddr_un, socklen_t>> unix_address(const std::string& path) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof un.sun_path)
    return fail("notify socket path empty or too long: \"" + path + "\"", ENAMETOOLONG);
  std::memcpy(un.sun_path, path.data(), path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  if (path[0] == '@')
    un.sun_path[0] = '\0';  // abstract: no terminating NUL in the length
  else
    len += 1;
  return std::make_pair(un, len);
}

}  // namespace

Result<UniqueFd> open_notify_socket(const std::string& path) {
  auto address = unix_address(path);
  if (!address) return tl::unexpected(address.error());
  bool abstract = path[0] == '@';
  if (!abstract) {
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return fail(path + " exists and is not a socket", EEXIST);
      if (unlink(path.c_str()) != 0) return fail_errno("unlink " + path);
    } else if (errno != ENOENT) {
      return fail_errno("stat " + path);
    }
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail_errno("socket");
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address->first), address->second) != 0)
    return fail_errno("bind " + path);
  if (!abstract && chmod(path.c_str(), 0666) != 0) return fail_errno("chmod " + path);
  // Nobody has a reason to pass descriptors here (usherd has no fd store): where the kernel
  // can, it refuses them at the sender's sendmsg.
  (void)refuse_passed_fds(fd.get());
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
    return fail_errno("setsockopt SO_PASSCRED");
  // The sender as a pidfd too, where the kernel can: attribution then names a process, not a
  // pid number that a later process may have been given.
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_PASSPIDFD, &one, sizeof one);
  // A flood of instances all reporting at once must not overflow the queue: ask for 8 MiB
  // (as systemd does), forcing past rmem_max when privileged. Best effort.
  int size = 8 * 1024 * 1024;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return fd;
}

Result<std::optional<Notification>> receive_notification(int fd, FdCloser& closer) {
  char buffer[kNotifyPayloadMax];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int)) +
                                CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{buffer, sizeof buffer};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<Notification>();
    return fail_errno("recvmsg notify");
  }
  Notification note;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      // pid 0: the sender is outside our pid namespace; it cannot be attributed.
      if (cred.pid > 0) note.sender = cred;
    } else if (c->cmsg_type == SCM_PIDFD && c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int raw;
      std::memcpy(&raw, CMSG_DATA(c), sizeof raw);
      UniqueFd pidfd(raw);  // the kernel's own pidfd: closing it never blocks
      if (pidfd) note.sender_pidfd_inode = pidfd_inode(pidfd.get()).value_or(0);
    }
  }
  // Room was made for every descriptor a datagram can carry (kMaxPassedFds), so none is
  // dropped by the kernel in usherd's context; closing them may block, so not here.
  dispose_passed_fds(msg, closer);
  // With MSG_TRUNC recvmsg returns the datagram's real length.
  std::size_t length = static_cast<std::size_t>(n);
  note.truncated = (msg.msg_flags & MSG_TRUNC) != 0 || length > sizeof buffer;
  note.payload.assign(buffer, std::min(length, sizeof buffer));
  return std::optional<Notification>(std::move(note));
}

const char* notify_problem(const Notification& note) {
  if (note.truncated) return "truncated";
  if (note.payload.find('\0') != std::string::npos) return "embedded NUL";
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> parse_notify_payload(std::string_view payload) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!payload.empty()) {
    auto end = payload.find('\n');
    std::string_view line = payload.substr(0, end);
    payload = end == std::string_view::npos ? std::string_view() : payload.substr(end + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    pairs.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return pairs;
}

Result<void> send_notification(const std::string& socket_path, std::string_view payload,
                               std::optional<pid_t> as_pid) {
  auto address = unix_address(socket_path);
  if (!address) return tl::unexpected(address.error());
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  msghdr msg{};
  msg.msg_name = &address->first;
  msg.msg_namelen = address->second;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
  if (as_pid) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(ucred));
    ucred cred{*as_pid, getuid(), getgid()};
    std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
  }
  if (sendmsg(fd.get(), &msg, MSG_NOSIGNAL) >= 0) return {};
  if (as_pid && errno == EPERM) {
    // Not allowed to name another pid: send as ourselves (sd_pid_notify does the same).
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    if (sendmsg(fd.get(), &msg, MSG_NOSIGNAL) >= 0) return {};
  }
  return fail_errno("send notification to " + socket_path);
}

}  // namespace usherd::activation

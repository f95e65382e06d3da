// The notify socket: credentials from the main process and from a descendant, missing
// credentials, passed fds, truncation, payload parsing, and the usherctl-notify client.
#include "activation/notify.h"

#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include <filesystem>
#include <sstream>

#include "activation/process.h"
#include "activation/spawn.h"
#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

namespace {

struct NotifyDir {
  std::filesystem::path dir;
  std::string socket;
  NotifyDir() {
    char pattern[] = "/tmp/usherd-notify-XXXXXX";
    REQUIRE(mkdtemp(pattern));
    dir = pattern;
    socket = (dir / "notify").string();
  }
  ~NotifyDir() { std::filesystem::remove_all(dir); }
};

Notification receive_one(int fd) {
  REQUIRE(wait_readable(fd, std::chrono::seconds(10)));
  FdCloser closer;
  auto note = receive_notification(fd, closer);
  REQUIRE(note);
  REQUIRE(note->has_value());
  return std::move(**note);
}

// Runs notify_probe in mode; returns the sender pid it printed, with the probe still alive.
struct ProbeRun {
  SpawnedProcess process;
  UniqueFd stdin_write;
  pid_t sender = 0;
};

ProbeRun run_probe(const std::string& socket, const std::string& mode) {
  auto [in_read, in_write] = make_pipe();
  auto [out_read, out_write] = make_pipe();
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = helper("notify_probe");
  plan.argv = {"notify_probe", socket, mode, "READY=1\nSTATUS=up"};
  plan.fds = {{in_read.get(), 0}, {out_write.get(), 1}, {null.get(), 2}};
  auto process = spawn(plan);
  REQUIRE(process);
  out_write.reset();
  // "sent PID\n" is one short write: read up to the newline.
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos) {
    REQUIRE(wait_readable(out_read.get(), std::chrono::seconds(10)));
    REQUIRE(::read(out_read.get(), &c, 1) == 1);
    line += c;
  }
  std::istringstream words(line);
  std::string word;
  pid_t sender = 0;
  words >> word >> sender;
  REQUIRE(word == "sent");
  return ProbeRun{std::move(*process), std::move(in_write), sender};
}

}  // namespace

TEST_CASE(
    "the notify socket is a 0666 datagram socket with SO_PASSCRED that replaces a stale "
    "one",
    "[activation][notify]") {
  NotifyDir dir;
  {
    auto first = open_notify_socket(dir.socket);
    REQUIRE(first);
  }
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  struct stat st {};
  REQUIRE(stat(dir.socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0666);
  int passcred = 0;
  socklen_t len = sizeof passcred;
  REQUIRE(getsockopt(fd->get(), SOL_SOCKET, SO_PASSCRED, &passcred, &len) == 0);
  CHECK(passcred == 1);
  CHECK((fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((fcntl(fd->get(), F_GETFL) & O_NONBLOCK) != 0);
  FdCloser closer;
  auto empty = receive_notification(fd->get(), closer);
  REQUIRE(empty);
  CHECK_FALSE(empty->has_value());
}

TEST_CASE("a notification from the main process carries its pid", "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  auto run = run_probe(dir.socket, "self");
  auto note = receive_one(fd->get());
  REQUIRE(note.sender);
  CHECK(note.sender->pid == run.process.pid);
  CHECK(note.sender->pid == run.sender);
  CHECK(note.sender->uid == geteuid());
  CHECK(note.payload == "READY=1\nSTATUS=up");
  CHECK_FALSE(note.truncated);
  // Where the kernel attaches the sender's pidfd and pidfds live on pidfs, the notification
  // names the very process, by the identity its own pidfd has.
  auto own = pidfd_inode(run.process.pidfd.get());
  REQUIRE(own);
  CHECK(note.sender_pidfd_inode == *own);
  if (*own == 0) WARN("pidfds are not on pidfs here (Linux < 6.9): attribution by pid alone");
  run.stdin_write.reset();
  CHECK(wait_exit(run.process.pidfd.get()).code_or_signal == 0);
}

TEST_CASE(
    "a notification from a descendant names the descendant, whose ancestry leads to the "
    "main process",
    "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  auto run = run_probe(dir.socket, "child");
  auto note = receive_one(fd->get());
  REQUIRE(note.sender);
  CHECK(note.sender->pid == run.sender);
  CHECK(note.sender->pid != run.process.pid);
  CHECK(parent_pid(note.sender->pid).value_or(-1) == run.process.pid);
  CHECK(is_descendant(note.sender->pid, run.process.pid));
  CHECK_FALSE(is_descendant(run.process.pid, note.sender->pid));
  run.stdin_write.reset();
  CHECK(wait_exit(run.process.pidfd.get()).code_or_signal == 0);
}

TEST_CASE("without SO_PASSCRED a notification has no sender", "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  int off = 0;
  REQUIRE(setsockopt(fd->get(), SOL_SOCKET, SO_PASSCRED, &off, sizeof off) == 0);
  REQUIRE(send_notification(dir.socket, "READY=1"));
  auto note = receive_one(fd->get());
  CHECK_FALSE(note.sender);
  CHECK(note.payload == "READY=1");
}

TEST_CASE("the client names the pid it is asked to, as systemd-notify names its parent",
          "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  REQUIRE(send_notification(dir.socket, "READY=1"));
  auto own = receive_one(fd->get());
  REQUIRE(own.sender);
  CHECK(own.sender->pid == getpid());

  REQUIRE(send_notification(dir.socket, "READY=1", getppid()));
  auto named = receive_one(fd->get());
  REQUIRE(named.sender);
  if (geteuid() == 0)
    CHECK(named.sender->pid == getppid());  // CAP_SYS_ADMIN may name another pid
  else
    CHECK(named.sender->pid == getpid());  // EPERM: sent as ourselves
}

TEST_CASE("descriptors passed to the notify socket are refused or closed, not leaked",
          "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  auto [pipe_read, pipe_write] = make_pipe();
  UniqueFd sender(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, dir.socket.c_str());
  char payload[] = "FDSTORE=1";
  iovec iov{payload, sizeof payload - 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = &un;
  msg.msg_namelen = sizeof un;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int passed = pipe_write.get();
  std::memcpy(CMSG_DATA(c), &passed, sizeof passed);
  if (::sendmsg(sender.get(), &msg, 0) < 0) {
    // The kernel has SO_PASSRIGHTS and the socket turned it off: nothing reaches usherd.
    CHECK(errno == EPERM);
    return;
  }
  pipe_write.reset();  // our copy: the only other one travelled in the datagram

  FdCloser closer;
  REQUIRE(wait_readable(fd->get(), std::chrono::seconds(10)));
  auto note = receive_notification(fd->get(), closer);
  REQUIRE(note);
  REQUIRE(note->has_value());
  CHECK((*note)->payload == "FDSTORE=1");
  CHECK(closer.received() == 1);
  // If the received copy had leaked, the pipe's write side would still be open.
  CHECK(read_all(pipe_read.get(), std::chrono::seconds(5)).empty());
}

TEST_CASE("an oversized notification is cut at the cap and marked truncated",
          "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  std::string big = "STATUS=" + std::string(10000, 'x');
  REQUIRE(send_notification(dir.socket, big));
  auto note = receive_one(fd->get());
  CHECK(note.truncated);
  CHECK(note.payload.size() == kNotifyPayloadMax);
  CHECK(note.payload == big.substr(0, kNotifyPayloadMax));
  CHECK(std::string(notify_problem(note)) == "truncated");
}

TEST_CASE("a notification with a NUL byte is ignored as a whole, as systemd does",
          "[activation][notify]") {
  NotifyDir dir;
  auto fd = open_notify_socket(dir.socket);
  REQUIRE(fd);
  REQUIRE(send_notification(dir.socket, std::string("STATUS=x\0\nREADY=1", 17)));
  auto note = receive_one(fd->get());
  CHECK(note.payload.size() == 17);
  CHECK_FALSE(note.truncated);
  REQUIRE(notify_problem(note) != nullptr);
  CHECK(std::string(notify_problem(note)) == "embedded NUL");
  REQUIRE(send_notification(dir.socket,
                            "READY=1\nSTATUS=\xff\x01"
                            "binary"));
  CHECK(notify_problem(receive_one(fd->get())) == nullptr);
}

TEST_CASE("notify payloads split into KEY=VALUE pairs and skip garbage lines",
          "[activation][notify]") {
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  auto [payload, expected] = GENERATE(table<std::string, Pairs>({
      {"READY=1", {{"READY", "1"}}},
      {"READY=1\nSTATUS=Serving 3 clients\n", {{"READY", "1"}, {"STATUS", "Serving 3 clients"}}},
      {"garbage\n=nokey\nSTOPPING=1", {{"STOPPING", "1"}}},
      {"STATUS=a=b", {{"STATUS", "a=b"}}},
      {"STATUS=", {{"STATUS", ""}}},
      {"", {}},
      {"\n\n", {}},
  }));
  CHECK(parse_notify_payload(payload) == expected);
}

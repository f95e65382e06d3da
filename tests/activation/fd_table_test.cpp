// holds_any_socket() against a real child process that holds, then drops, a listening socket.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>
#include "tests/catch.h"

#include "activation/fd_table.h"
#include "test_support.h"

namespace usherd::activation {
namespace {

UniqueFd loopback_listener() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // port 0: any free port
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd.get(), 1) == 0);
  return fd;
}

TEST_CASE("a child holding a socket is seen to hold it, and not after it closes it",
          "[activation][fd_table]") {
  UniqueFd held = loopback_listener();
  UniqueFd other = loopback_listener();
  auto held_inode = socket_inode(held.get());
  auto other_inode = socket_inode(other.get());
  REQUIRE(held_inode);
  REQUIRE(other_inode);
  REQUIRE(*held_inode != *other_inode);

  auto [command_read, command_write] = test::make_pipe();
  auto [ack_read, ack_write] = test::make_pipe();
  int keep = ::fcntl(held.get(), F_DUPFD, 100);  // not close-on-exec, as a handed-over fd
  REQUIRE(keep >= 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(other.get());
    ::close(held.get());
    char c;
    if (::write(ack_write.get(), "h", 1) != 1) ::_exit(1);  // holding `keep` now
    if (::read(command_read.get(), &c, 1) != 1) ::_exit(1);
    ::close(keep);
    if (::write(ack_write.get(), "c", 1) != 1) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  ::close(keep);
  char c;
  REQUIRE(::read(ack_read.get(), &c, 1) == 1);

  std::vector<ino_t> mine{*held_inode};
  std::vector<ino_t> not_mine{*other_inode};
  auto holds = holds_any_socket(child, mine);
  REQUIRE(holds);
  CHECK(*holds);
  auto holds_other = holds_any_socket(child, not_mine);
  REQUIRE(holds_other);
  CHECK_FALSE(*holds_other);

  REQUIRE(::write(command_write.get(), "x", 1) == 1);
  REQUIRE(::read(ack_read.get(), &c, 1) == 1);
  auto after = holds_any_socket(child, mine);
  REQUIRE(after);
  CHECK_FALSE(*after);

  auto children = child_pids(::getpid());
  CHECK(std::find(children.begin(), children.end(), child) != children.end());
  CHECK(child_pids(child).empty());

  ::kill(child, SIGKILL);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  auto gone = holds_any_socket(child, mine);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == ENOENT);
}

TEST_CASE("socket_inode refuses what is not a socket", "[activation][fd_table]") {
  auto [r, w] = test::make_pipe();
  auto inode = socket_inode(r.get());
  REQUIRE_FALSE(inode);
  CHECK(inode.error().code == ENOTSOCK);
}

}  // namespace
}  // namespace usherd::activation

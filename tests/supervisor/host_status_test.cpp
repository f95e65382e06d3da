// What usherd tells its host: the sd_notify protocol against a real datagram socket standing
// in for systemd's, and the title's rate limit.
#include "supervisor/host_status.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "base/unique_fd.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

// A socket where systemd would listen for usherd's notifications.
struct FakeManager {
  explicit FakeManager(const std::string& path) {
    fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~FakeManager() { ::unsetenv("NOTIFY_SOCKET"); }
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[512];
    for (;;) {
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.emplace_back(buf, static_cast<std::size_t>(n));
    }
  }
  UniqueFd fd;
};

}  // namespace

TEST_CASE("under systemd: READY, STATUS once per change, RELOADING, STOPPING",
          "[supervisor][host]") {
  TempDir dir;
  FakeManager manager(dir / "notify");
  boost::asio::io_context io;
  std::string figures = "0 of 10:30:100 startups, 0 instances";
  HostStatus host(io, [&] { return figures; });
  host.detect_service_manager();
  REQUIRE(host.under_systemd());
  host.ready();
  host.tick();
  host.tick();  // nothing changed: no second STATUS=
  CHECK(manager.received() ==
        std::vector<std::string>{"READY=1", "STATUS=0 of 10:30:100 startups, 0 instances"});
  figures = "1 of 10:30:100 startups, 1 instances";
  host.tick();
  host.reloading();
  CHECK(manager.received() ==
        std::vector<std::string>{"STATUS=1 of 10:30:100 startups, 1 instances", "RELOADING=1"});
  CHECK_FALSE(host.stopping());
  host.stop();
  host.stop();  // said once
  CHECK(host.stopping());
  CHECK(manager.received() == std::vector<std::string>{"STOPPING=1"});
}

TEST_CASE("without systemd nothing is sent and the title is rate-limited", "[supervisor][host]") {
  ::unsetenv("NOTIFY_SOCKET");
  boost::asio::io_context io;
  int asked = 0;
  HostStatus host(io, [&] {
    ++asked;
    return std::string("figures");
  });
  host.detect_service_manager();
  CHECK_FALSE(host.under_systemd());
  host.ready();  // no socket: nothing to send, nothing fails
  host.changed();
  CHECK(asked == 1);
  // Within the interval the title waits for its timer: one more look, however many changes.
  for (int i = 0; i < 100; ++i) host.changed();
  CHECK(asked == 1);
  REQUIRE(run_until(
      io, [&] { return asked == 2; }, std::chrono::seconds(2)));
  CHECK(host.reloads() == 0);
  host.count_reload();
  CHECK(host.reloads() == 1);
}

// The control socket: real connections from a client thread, answers from the handler, and
// the bounds (an unknown command, a stop of nothing, an oversized request).
#include "supervisor/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <future>
#include <thread>

#include <boost/json/parse.hpp>

#include "base/unique_fd.h"
#include "supervisor/control_protocol.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using namespace usherd::supervisor::test;

namespace {

// One request as usherctl sends it: connect, write, half-close, read the answer to EOF.
std::string ask(const std::string& path, const std::string& body) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "";
  std::size_t sent = 0;
  while (sent < body.size()) {
    ssize_t n = ::send(fd.get(), body.data() + sent, body.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string answered(boost::asio::io_context& io, const std::string& path,
                     const std::string& body) {
  auto answer = std::async(std::launch::async, [&] { return ask(path, body); });
  REQUIRE(run_until(
      io, [&] { return answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  return answer.get();
}

}  // namespace

TEST_CASE("the control socket answers status, reload and stop through its handler",
          "[supervisor][control]") {
  TempDir dir;
  boost::asio::io_context io;
  int reloads = 0;
  std::vector<std::string> stopped;
  ControlServer server(io, ControlServer::Handler{[](ControlServer::Clock::time_point) {
                                                    StatusSnapshot s;
                                                    s.startups.current = 2;
                                                    s.tracked = 5;
                                                    return s;
                                                  },
                                                  [&] {
                                                    ++reloads;
                                                    return std::make_pair(
                                                        true, std::string("2 sockets loaded"));
                                                  },
                                                  [&](const std::string& id) {
                                                    stopped.push_back(id);
                                                    return id == "ssh@1.service";
                                                  }});
  std::string path = dir / "control";
  server.start(path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto status = boost::json::parse(answered(io, path, R"({"version":1,"command":"status"})"));
  CHECK(status.at("ok").as_bool());
  CHECK(status.at("result").at("startups").at("current").as_int64() == 2);
  // The server's own counters are in the snapshot it renders.
  CHECK(status.at("result").at("control_requests").at("answered").as_int64() == 0);

  auto reload = boost::json::parse(answered(io, path, R"({"version":1,"command":"reload"})"));
  CHECK(reload.at("result").as_string() == "2 sockets loaded");
  CHECK(reloads == 1);

  auto stop = boost::json::parse(
      answered(io, path, R"({"version":1,"command":"stop","id":"ssh@1.service"})"));
  CHECK(stop.at("ok").as_bool());
  auto none =
      boost::json::parse(answered(io, path, R"({"version":1,"command":"stop","id":"nothing"})"));
  CHECK_FALSE(none.at("ok").as_bool());
  CHECK(none.at("error").as_string() == "no instance nothing");
  CHECK(stopped == std::vector<std::string>{"ssh@1.service", "nothing"});

  auto bad = boost::json::parse(answered(io, path, "not json"));
  CHECK_FALSE(bad.at("ok").as_bool());
  auto huge = boost::json::parse(answered(io, path, std::string(kMaxRequest + 10, ' ')));
  CHECK_FALSE(huge.at("ok").as_bool());
  CHECK(server.answered() == 3);
  CHECK(server.refused() == 3);
  CHECK(server.snapshot(ControlServer::Clock::now()).control_refused == 3);
}

TEST_CASE("metrics over HTTP are served only where usherd.conf says", "[supervisor][control]") {
  boost::asio::io_context io;
  ControlServer server(io,
                       ControlServer::Handler{[](auto) { return StatusSnapshot{}; },
                                              [] { return std::make_pair(true, std::string()); },
                                              [](const std::string&) { return false; }});
  server.start_metrics(std::nullopt);
  CHECK(server.metrics_address().empty());
  units::ListenAddress address;
  address.text = "127.0.0.1:0";
  address.host = "127.0.0.1";
  server.start_metrics(address);
  CHECK(server.metrics_address().rfind("127.0.0.1:", 0) == 0);
  CHECK(server.snapshot(ControlServer::Clock::now()).metrics_listen == server.metrics_address());
}

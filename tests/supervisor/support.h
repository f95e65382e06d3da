// Shared helpers for the supervisor's component tests: units from text, a private temporary
// directory, and running an io_context until a condition holds (a test that would hang fails
// at its deadline instead; no sleeps stand in for events).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include <fcntl.h>

#include "activation/spawn.h"
#include "base/unique_fd.h"
#include "supervisor/instance_table.h"
#include "supervisor/readiness_monitor.h"
#include "supervisor/spawn_plan.h"
#include "tests/catch.h"
#include "units/unit_parser.h"

namespace usherd::supervisor::test {

inline units::ServiceUnit service_unit(std::string_view name, std::string_view text) {
  auto unit = units::parse_unit_name(name);
  REQUIRE(unit);
  std::vector<units::Diagnostic> diagnostics;
  auto parsed = units::parse_service_text(
      *unit, std::string(name), text,
      [](const std::string& path) -> Result<std::string> { return fail(path, ENOENT); },
      diagnostics);
  REQUIRE(parsed);
  return *parsed;
}

inline units::SocketUnit socket_unit(std::string_view name, std::string_view text) {
  auto unit = units::parse_unit_name(name);
  REQUIRE(unit);
  std::vector<units::Diagnostic> diagnostics;
  auto parsed = units::parse_socket_text(*unit, std::string(name), text, diagnostics);
  INFO((diagnostics.empty() ? std::string() : diagnostics.front().to_string()));
  REQUIRE(parsed);
  return *parsed;
}

inline std::shared_ptr<ServicePlan> plan_for(std::string_view name, std::string_view text,
                                             const std::string& notify_socket = "/nonexistent") {
  auto made = make_plan(service_unit(name, text), PlanContext{notify_socket, {}});
  INFO((made ? std::string() : made.error().message));
  REQUIRE(made);
  return *made;
}

/// A directory of the test's own, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/usherd-supervisor-test.XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

/// Runs io until done() holds; false if the deadline passed first.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    io.run_for(std::chrono::milliseconds(10));
    io.restart();
  }
  return true;
}

}  // namespace usherd::supervisor::test

namespace usherd::supervisor::test {

/// Starts argv (stdio on /dev/null unless given) as usherd starts a service's command.
inline activation::SpawnedProcess start_process(std::vector<std::string> argv,
                                                std::vector<std::string> env = {},
                                                int stderr_fd = -1) {
  static int dev_null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  activation::SpawnPlan plan;
  plan.path = argv.front();
  plan.argv = std::move(argv);
  plan.env = std::move(env);
  plan.env.push_back("PATH=/usr/bin:/bin");
  plan.fds = {{dev_null, 0}, {dev_null, 1}, {stderr_fd >= 0 ? stderr_fd : dev_null, 2}};
  auto spawned = activation::spawn(plan);
  INFO((spawned ? std::string() : spawned.error().to_string()));
  REQUIRE(spawned);
  return std::move(*spawned);
}

}  // namespace usherd::supervisor::test

namespace usherd::supervisor::test {

/// An owner that writes down what reaches it ("ready NAME VIA", "again NAME", "ended NAME").
struct RecordingOwner : InstanceOwner {
  std::vector<std::string> events;
  std::map<std::string, EndStatus> ends;
  void instance_ready(Instance& i, const char* via, Clock::time_point) override {
    events.push_back("ready " + i.name + " " + via);
  }
  void instance_ready_again(Instance& i) override { events.push_back("again " + i.name); }
  void instance_ended(Instance& i, const EndStatus& status, Clock::time_point) override {
    events.push_back("ended " + i.name);
    ends[i.name] = status;
  }
};

/// What every component test stands on: a private directory, a loop, the instance table
/// (started, its hooks as the daemon sets them) and the readiness monitor.
struct TableFixture {
  TempDir dir;
  boost::asio::io_context io;
  UniqueFd dev_null{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  InstanceTable table{io, dir / "state"};
  ReadinessMonitor readiness{io, table};
  /// after_end: what else should follow an instance's end.
  explicit TableFixture(std::function<void()> after_end = {}) {
    table.set_hooks({[this](Instance& i) { readiness.drain(i); },
                     [this](Instance& i) { readiness.drain_output(i); }, std::move(after_end)});
    REQUIRE(table.start());
  }
};

}  // namespace usherd::supervisor::test

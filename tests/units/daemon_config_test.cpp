// usherd.conf: defaults, every key, and errors for bad values.
#include "units/daemon_config.h"

#include "tests/catch.h"

using namespace usherd::units;
using namespace std::chrono_literals;

TEST_CASE("an empty usherd.conf gives the built-in defaults", "[units][daemon]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config("", "usherd.conf", d);
  CHECK(r.ok);
  CHECK(d.empty());
  CHECK(r.config.max_startups == usherd::policy::MaxStartups{10, 30, 100});
  CHECK_FALSE(r.config.per_source_max_startups);
  CHECK(r.config.per_source_net_block_size == usherd::policy::NetBlockSize{32, 128});
  CHECK(r.config.startup_timeout == Duration(120s));
  CHECK(r.config.reserved_startups == 2);
  CHECK(r.config.exempt_sources.empty());
  CHECK_FALSE(r.config.metrics_listen);
}

TEST_CASE("every usherd.conf key reaches its field", "[units][daemon]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config(
      "[Policy]\nMaxStartups=3:50:9\nPerSourceMaxStartups=4\nPerSourceNetBlockSize=24:64\n"
      "StartupTimeoutSec=2min\nExemptSources=10.0.0.0/8 ::1\nReservedStartups=5\n"
      "PerSourcePenalties=crash:2m noauth:3s\nPerSourcePenaltyExemptList=192.0.2.1\n"
      "[Metrics]\nListenStream=127.0.0.1:9100\n",
      "usherd.conf", d);
  REQUIRE(r.ok);
  CHECK(d.empty());
  const DaemonConfig& c = r.config;
  CHECK(c.max_startups == usherd::policy::MaxStartups{3, 50, 9});
  CHECK(c.per_source_max_startups == 4u);
  CHECK(c.per_source_net_block_size == usherd::policy::NetBlockSize{24, 64});
  CHECK(c.startup_timeout == Duration(2min));
  CHECK(c.exempt_sources.size() == 2);
  CHECK(c.reserved_startups == 5);
  CHECK(c.per_source_penalties.crash == 120s);
  CHECK(c.per_source_penalties.noauth == 3s);
  CHECK(c.per_source_penalty_exempt_list.size() == 1);
  REQUIRE(c.metrics_listen);
  CHECK(c.metrics_listen->to_string() == "127.0.0.1:9100");
}

TEST_CASE("a bad usherd.conf value is an error that marks the file unusable", "[units][daemon]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config("[Policy]\nMaxStartups=10:30\nFoo=1\n", "usherd.conf", d);
  CHECK_FALSE(r.ok);
  REQUIRE(d.size() == 2);
  CHECK(d[0].severity == Diagnostic::Severity::error);
  CHECK(d[0].to_string().rfind("usherd.conf:2: Failed to parse MaxStartups= value: 10:30 (", 0) ==
        0);
  CHECK(d[1].to_string() == "usherd.conf:3: Unknown key name 'Foo' in section 'Policy', ignoring.");
  CHECK(d[1].severity == Diagnostic::Severity::warning);
}

TEST_CASE("an empty assignment puts a usherd.conf setting back to its default", "[units][daemon]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config(
      "[Policy]\nMaxStartups=3:50:9\nMaxStartups=\nPerSourceMaxStartups=4\n"
      "PerSourceMaxStartups=\nPerSourceNetBlockSize=24:64\nPerSourceNetBlockSize=\n"
      "StartupTimeoutSec=2min\nStartupTimeoutSec=\nExemptSources=10.0.0.0/8\nExemptSources=\n"
      "ReservedStartups=5\nReservedStartups=\nPerSourcePenalties=crash:2m\nPerSourcePenalties=\n"
      "PerSourcePenaltyExemptList=192.0.2.1\nPerSourcePenaltyExemptList=\n"
      "[Metrics]\nListenStream=127.0.0.1:9100\nListenStream=\n",
      "usherd.conf", d);
  REQUIRE(r.ok);
  CHECK(d.empty());
  const DaemonConfig defaults;
  const DaemonConfig& c = r.config;
  CHECK(c.max_startups == defaults.max_startups);
  CHECK_FALSE(c.per_source_max_startups);
  CHECK(c.per_source_net_block_size == defaults.per_source_net_block_size);
  CHECK(c.startup_timeout == defaults.startup_timeout);
  CHECK(c.exempt_sources.empty());
  CHECK(c.reserved_startups == defaults.reserved_startups);
  CHECK(c.per_source_penalties.crash == defaults.per_source_penalties.crash);
  CHECK(c.per_source_penalty_exempt_list.empty());
  CHECK_FALSE(c.metrics_listen);
}

TEST_CASE("the waiting room is on by default with bounds below an ssh client's patience",
          "[units][daemon][room]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config("", "usherd.conf", d);
  REQUIRE(r.ok);
  const auto& room = r.config.waiting_room;
  CHECK(room.enabled);
  CHECK(room.max_parked == usherd::policy::MaxStartups{1000, 30, 1000});
  CHECK(room.per_source_max_parked == 100u);
  CHECK(room.max_wait == Duration(8s));
}

TEST_CASE("the waiting room keys reach their fields", "[units][daemon][room]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config(
      "[Policy]\nWaitingRoom=no\nMaxParked=100:30:400\nPerSourceMaxParked=none\n"
      "MaxParkedWait=2500ms\n",
      "usherd.conf", d);
  REQUIRE(r.ok);
  CHECK(d.empty());
  const auto& room = r.config.waiting_room;
  CHECK_FALSE(room.enabled);
  CHECK(room.max_parked == usherd::policy::MaxStartups{100, 30, 400});
  CHECK_FALSE(room.per_source_max_parked);
  CHECK(room.max_wait == Duration(2500ms));
}

TEST_CASE("a bad waiting room value is an error naming the file and line",
          "[units][daemon][room]") {
  auto [line, message] = GENERATE(table<std::string, std::string>({
      {"WaitingRoom=maybe",
       "usherd.conf:2: Failed to parse WaitingRoom= value: maybe (expected "
       "yes or no)"},
      {"MaxParked=0", "usherd.conf:2: Failed to parse MaxParked= value: 0 ("},
      {"MaxParked=9:30:3", "usherd.conf:2: Failed to parse MaxParked= value: 9:30:3 ("},
      {"PerSourceMaxParked=0", "usherd.conf:2: Failed to parse PerSourceMaxParked= value: 0 ("},
      {"MaxParkedWait=0",
       "usherd.conf:2: Failed to parse MaxParkedWait= value: 0 (expected a "
       "time between 1us and 24h)"},
      {"MaxParkedWait=infinity",
       "usherd.conf:2: Failed to parse MaxParkedWait= value: infinity "
       "(expected a time between 1us and 24h)"},
      {"MaxParkedWait=25h", "usherd.conf:2: Failed to parse MaxParkedWait= value: 25h ("},
      {"MaxParkedWait=soon", "usherd.conf:2: Failed to parse MaxParkedWait= value: soon ("},
  }));
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config("[Policy]\n" + line + "\n", "usherd.conf", d);
  CHECK_FALSE(r.ok);
  REQUIRE(d.size() == 1);
  CHECK(d[0].severity == Diagnostic::Severity::error);
  CHECK(d[0].to_string().rfind(message, 0) == 0);
  // The rejected value leaves the default in place.
  CHECK(r.config.waiting_room.enabled);
  CHECK(r.config.waiting_room.max_wait == Duration(8s));
}

TEST_CASE("an empty assignment puts a waiting room key back to its default",
          "[units][daemon][room]") {
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config(
      "[Policy]\nWaitingRoom=no\nWaitingRoom=\nMaxParked=5\nMaxParked=\n"
      "PerSourceMaxParked=none\nPerSourceMaxParked=\nMaxParkedWait=1s\nMaxParkedWait=\n",
      "usherd.conf", d);
  REQUIRE(r.ok);
  CHECK(d.empty());
  const DaemonConfig defaults;
  CHECK(r.config.waiting_room.enabled == defaults.waiting_room.enabled);
  CHECK(r.config.waiting_room.max_parked == defaults.waiting_room.max_parked);
  CHECK(r.config.waiting_room.per_source_max_parked == defaults.waiting_room.per_source_max_parked);
  CHECK(r.config.waiting_room.max_wait == defaults.waiting_room.max_wait);
}

TEST_CASE("ReclaimStalledSec= and ReclaimStalledBytes= reach their fields, 0 turns it off",
          "[units][daemon][stall]") {
  std::vector<Diagnostic> d;
  auto defaults = parse_daemon_config("", "usherd.conf", d);
  REQUIRE(defaults.ok);
  CHECK(defaults.config.stall.after == Duration(5s));
  CHECK(defaults.config.stall.bytes == 512u);
  auto r = parse_daemon_config("[Policy]\nReclaimStalledSec=1500ms\nReclaimStalledBytes=4\n",
                               "usherd.conf", d);
  REQUIRE(r.ok);
  CHECK(d.empty());
  CHECK(r.config.stall.after == Duration(1500ms));
  CHECK(r.config.stall.bytes == 4u);
  for (const char* off : {"0", "infinity"}) {
    auto o = parse_daemon_config(std::string("[Policy]\nReclaimStalledSec=") + off + "\n",
                                 "usherd.conf", d);
    REQUIRE(o.ok);
    CHECK_FALSE(o.config.stall.enabled());
  }
  auto reset = parse_daemon_config(
      "[Policy]\nReclaimStalledSec=9s\nReclaimStalledSec=\nReclaimStalledBytes=9\n"
      "ReclaimStalledBytes=\n",
      "usherd.conf", d);
  REQUIRE(reset.ok);
  CHECK(reset.config.stall.after == Duration(5s));
  CHECK(reset.config.stall.bytes == 512u);
}

TEST_CASE("a bad ReclaimStalled value is an error naming the file and line",
          "[units][daemon][stall]") {
  auto [line, message] = GENERATE(table<std::string, std::string>({
      {"ReclaimStalledSec=25h", "usherd.conf:2: Failed to parse ReclaimStalledSec= value: 25h ("},
      {"ReclaimStalledSec=soon", "usherd.conf:2: Failed to parse ReclaimStalledSec= value: soon ("},
      {"ReclaimStalledBytes=-1", "usherd.conf:2: Failed to parse ReclaimStalledBytes= value: -1 ("},
      {"ReclaimStalledBytes=2000000",
       "usherd.conf:2: Failed to parse ReclaimStalledBytes= value: 2000000 ("},
  }));
  std::vector<Diagnostic> d;
  auto r = parse_daemon_config("[Policy]\n" + line + "\n", "usherd.conf", d);
  CHECK_FALSE(r.ok);
  REQUIRE(d.size() == 1);
  CHECK(d[0].to_string().rfind(message, 0) == 0);
  CHECK(r.config.stall.after == Duration(5s));
}

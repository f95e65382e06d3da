// Tests for policy/stall: which startups are reclaimed as stalled when connections wait.
#include "tests/catch.h"

#include <string>
#include <vector>

#include "policy/stall.h"

using namespace std::chrono_literals;
using usherd::policy::choose_stalled;
using usherd::policy::StallConfig;
using usherd::policy::StartupProgress;
using usherd::policy::TimePoint;

namespace {

const TimePoint t0 = TimePoint() + 100000s;

StartupProgress startup(std::uint64_t key, std::chrono::seconds age, std::uint64_t bytes,
                        bool exempt = false) {
  return {key, t0 - age, exempt, bytes};
}

}  // namespace

TEST_CASE("a startup is stalled when its client sent too little for long enough",
          "[policy][stall]") {
  const StallConfig config;  // 5s, 512 bytes
  struct Row {
    std::string what;
    StartupProgress startup;
    bool stalled;
  };
  const std::vector<Row> rows = {
      {"an identification line, then nothing for 6 s", startup(1, 6s, 40), true},
      {"nothing at all for 5 s exactly", startup(2, 5s, 0), true},
      {"one byte short of the threshold", startup(3, 60s, 511), true},
      {"at the threshold: a key exchange began", startup(4, 60s, 512), false},
      {"a real client's key exchange, slow authentication after", startup(5, 60s, 1600), false},
      {"too young to judge", startup(6, 4s, 0), false},
      {"an exempt source, never", startup(7, 60s, 0, true), false},
      {"its progress cannot be read (not TCP)", {8, t0 - 60s, false, std::nullopt}, false},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    auto chosen = choose_stalled({row.startup}, t0, config, 1);
    CHECK(chosen.empty() == !row.stalled);
  }
}

TEST_CASE("stalled startups are reclaimed oldest first, no more than are needed",
          "[policy][stall]") {
  const StallConfig config;
  std::vector<StartupProgress> startups = {
      startup(1, 7s, 0),   startup(2, 30s, 30), startup(3, 9s, 2000),
      startup(4, 12s, 10), startup(5, 3s, 0),
  };
  CHECK(choose_stalled(startups, t0, config, 10) == std::vector<std::uint64_t>{2, 4, 1});
  CHECK(choose_stalled(startups, t0, config, 2) == std::vector<std::uint64_t>{2, 4});
  CHECK(choose_stalled(startups, t0, config, 0).empty());  // nobody waits: nothing to free
  // Time passes: the young one becomes a candidate too.
  CHECK(choose_stalled(startups, t0 + 2s, config, 10) == std::vector<std::uint64_t>{2, 4, 1, 5});
}

TEST_CASE("ReclaimStalledSec=0 turns reclaiming off, and the thresholds are the config's",
          "[policy][stall]") {
  std::vector<StartupProgress> startups = {startup(1, 600s, 0), startup(2, 2s, 100)};
  StallConfig off;
  off.after = 0s;
  CHECK(choose_stalled(startups, t0, off, 10).empty());
  StallConfig quick;
  quick.after = 1s;
  quick.bytes = 101;
  CHECK(choose_stalled(startups, t0, quick, 10) == std::vector<std::uint64_t>{1, 2});
  quick.bytes = 100;
  CHECK(choose_stalled(startups, t0, quick, 10) == std::vector<std::uint64_t>{1});
}

TEST_CASE("a startup whose client hung up is reclaimed first, whatever its age or bytes",
          "[policy][stall]") {
  const StallConfig config;
  auto gone = [](std::uint64_t key, std::chrono::seconds age, std::uint64_t bytes,
                 bool exempt = false) {
    StartupProgress s = startup(key, age, bytes, exempt);
    s.client_gone = true;
    return s;
  };
  std::vector<StartupProgress> startups = {
      startup(1, 60s, 0),     // stalled, oldest
      gone(2, 1s, 5000),      // hung up mid-authentication, young
      gone(3, 2s, 0),         // hung up at once
      gone(4, 30s, 0, true),  // an exempt source's: never
  };
  CHECK(choose_stalled(startups, t0, config, 10) == std::vector<std::uint64_t>{3, 2, 1});
  CHECK(choose_stalled(startups, t0, config, 1) == std::vector<std::uint64_t>{3});
  StallConfig off;
  off.after = 0s;  // ReclaimStalledSec=0 turns both off
  CHECK(choose_stalled(startups, t0, off, 10).empty());
}

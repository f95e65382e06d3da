// Tests for policy/rate_limit: systemd's fixed-window TriggerLimit counting.
#include "policy/rate_limit.h"

#include "tests/catch.h"

using namespace std::chrono_literals;
using usherd::policy::RateLimit;
using usherd::policy::TimePoint;

namespace {
const TimePoint t0 = TimePoint() + 1000s;
}

TEST_CASE("rate limit refuses the burst+1th start in one interval", "[policy][rate]") {
  RateLimit limit(2s, 3);
  REQUIRE(limit.is_configured());
  CHECK(limit.try_take(t0));
  CHECK(limit.try_take(t0 + 100ms));
  CHECK(limit.try_take(t0 + 1s));
  CHECK_FALSE(limit.try_take(t0 + 1500ms));
  CHECK_FALSE(limit.try_take(t0 + 2s));
}

TEST_CASE("a new window opens only after more than the interval has passed", "[policy][rate]") {
  RateLimit limit(2s, 1);
  CHECK(limit.try_take(t0));
  CHECK_FALSE(limit.try_take(t0 + 2s));  // exactly the interval: same window, as systemd
  CHECK(limit.try_take(t0 + 2s + 1us));  // new window begins here
  CHECK_FALSE(limit.try_take(t0 + 3s));
  CHECK(limit.try_take(t0 + 4s + 2us));
}

TEST_CASE("a window is fixed, not sliding: refused events do not extend it", "[policy][rate]") {
  RateLimit limit(1s, 2);
  CHECK(limit.try_take(t0));
  CHECK(limit.try_take(t0 + 900ms));
  CHECK_FALSE(limit.try_take(t0 + 950ms));
  CHECK(limit.try_take(t0 + 1001ms));
  CHECK(limit.try_take(t0 + 1002ms));
  CHECK_FALSE(limit.try_take(t0 + 1003ms));
}

TEST_CASE("a rate limit without interval or burst passes everything", "[policy][rate]") {
  auto [interval, burst] = GENERATE(table<long, unsigned>({{0, 0}, {0, 5}, {2000000, 0}}));
  RateLimit limit{std::chrono::microseconds(interval), burst};
  CHECK_FALSE(limit.is_configured());
  for (int i = 0; i < 1000; ++i) REQUIRE(limit.try_take(t0));
  CHECK(RateLimit().try_take(t0));
}

TEST_CASE("reconfiguring a rate limit resets its window only when it changes", "[policy][rate]") {
  RateLimit limit(10s, 1);
  CHECK(limit.try_take(t0));
  limit.reconfigure(10s, 1);
  CHECK_FALSE(limit.try_take(t0 + 1s));
  limit.reconfigure(10s, 2);
  CHECK(limit.try_take(t0 + 2s));
  CHECK(limit.try_take(t0 + 3s));
  CHECK_FALSE(limit.try_take(t0 + 4s));
  CHECK(limit.burst() == 2);
  CHECK(limit.interval() == 10s);
}

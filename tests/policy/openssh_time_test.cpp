// Tests for policy/openssh_time: OpenSSH's convtime() format.
#include "policy/openssh_time.h"

#include "tests/catch.h"

#include <string>

using namespace std::chrono_literals;
using usherd::policy::format_openssh_time;
using usherd::policy::parse_openssh_time;

TEST_CASE("OpenSSH times sum number-unit terms, bare numbers being seconds", "[policy][time]") {
  auto [text, seconds] = GENERATE(table<std::string, long>({
      {"0", 0},
      {"90", 90},
      {"90s", 90},
      {"90S", 90},
      {"10m", 600},
      {"1h30m", 5400},
      {"1H30M", 5400},
      {"1h30", 3630},
      {"2d", 172800},
      {"1w", 604800},
      {"1w1d1h1m1s", 694861},
      {"2147483647", 2147483647},
  }));
  auto parsed = parse_openssh_time(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->count() == seconds);
}

TEST_CASE("malformed OpenSSH times are rejected with a golden error", "[policy][time]") {
  auto text = GENERATE(as<std::string>{}, "", "s", "m10", "10x", "1.5s", "-5", "10 s", "2147483648",
                       "3551w", "3550w6d", "1h-1");
  auto parsed = parse_openssh_time(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error() == "invalid time \"" + text + "\" (expected e.g. 90, 90s, 10m, 1h30m)");
}

TEST_CASE("OpenSSH times format largest unit first and parse back", "[policy][time]") {
  auto [seconds, text] = GENERATE(table<long, std::string>({
      {0, "0s"},
      {1, "1s"},
      {90, "1m30s"},
      {600, "10m"},
      {5400, "1h30m"},
      {694861, "1w1d1h1m1s"},
  }));
  CHECK(format_openssh_time(std::chrono::seconds(seconds)) == text);
  auto back = parse_openssh_time(text);
  REQUIRE(back.ok());
  CHECK(back->count() == seconds);
}

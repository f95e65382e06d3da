// Tests for policy/openssh_time: OpenSSH's convtime() format.
#include "policy/openssh_time.h"

#include "tests/catch.h"

#include <cmath>
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

TEST_CASE("OpenSSH 10.3 times take a fraction on the seconds term only", "[policy][time]") {
  auto [text, seconds] = GENERATE(table<std::string, double>({
      {"0.5", 0.5},
      {"0.5s", 0.5},
      {".5", 0.5},
      {"1m30.5s", 90.5},
      {"1h0.25", 3600.25},
      {"30s1m", 90},
      {"1m1m", 120},
      {"90", 90},
      {"2147483648", 2147483648.0},
  }));
  auto parsed = usherd::policy::parse_openssh_seconds(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->count() == seconds);
}

TEST_CASE("OpenSSH 10.3 refuses these times, and so does usherd", "[policy][time]") {
  auto text = GENERATE(as<std::string>{}, "", ".", "1.", "1.s", "1.5m", "0.5h", "1s1s", "5s1",
                       "1e3", "0x1p3", "-1", "+1", " 1", "1 ", "1x", "s", "inf", "nan", "1..2");
  auto parsed = usherd::policy::parse_openssh_seconds(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error() == "invalid time \"" + text + "\" (expected e.g. 90, 90s, 10m, 1h30m)");
}

TEST_CASE("sub-second times format with the fraction on the seconds", "[policy][time]") {
  auto [micros, text] = GENERATE(table<long long, std::string>({
      {0, "0s"},
      {500000, "0.5s"},
      {90500000, "1m30.5s"},
      {120250000, "2m0.25s"},
      {3600000001, "1h0.000001s"},
      {90000000, "1m30s"},
  }));
  CHECK(usherd::policy::format_openssh_seconds(std::chrono::microseconds(micros)) == text);
  auto back = usherd::policy::parse_openssh_seconds(text);
  REQUIRE(back.ok());
  CHECK(std::llround(back->count() * 1e6) == micros);
}

// Tests for policy/penalties: the PerSourcePenalties= syntax and defaults.
#include "policy/penalties.h"

#include "tests/catch.h"

#include <string>

using namespace std::chrono_literals;
using usherd::policy::PenaltyConfig;
using usherd::policy::PenaltyKind;
using usherd::policy::PenaltyOverflow;

TEST_CASE("penalty defaults are OpenSSH's", "[policy][penalties]") {
  const PenaltyConfig config;
  CHECK(config.enabled);
  CHECK(config.crash == 90s);
  CHECK(config.authfail == 5s);
  CHECK(config.noauth == 1s);
  CHECK(config.grace_exceeded == 10s);
  CHECK(config.max == 600s);
  CHECK(config.min == 15s);
  CHECK(config.max_sources4 == 65536);
  CHECK(config.max_sources6 == 65536);
  CHECK(config.overflow4 == PenaltyOverflow::permissive);
  CHECK(config.overflow6 == PenaltyOverflow::permissive);
  CHECK(config.to_string() ==
        "crash:1m30s authfail:5s noauth:1s grace-exceeded:10s invaliduser:5s "
        "refuseconnection:10s max:10m min:15s max-sources4:65536 max-sources6:65536 "
        "overflow:permissive overflow6:permissive");
}

TEST_CASE("every PerSourcePenalties keyword sets its field", "[policy][penalties]") {
  auto parsed = PenaltyConfig::parse(
      "crash:2m authfail:7 noauth:3s grace-exceeded:1h invaliduser:8s refuseconnection:9s "
      "max:1h30m min:20s max-sources4:100 max-sources6:200 overflow:deny-all "
      "overflow6:deny-all");
  REQUIRE(parsed.ok());
  CHECK(parsed->enabled);
  CHECK(parsed->crash == 120s);
  CHECK(parsed->authfail == 7s);
  CHECK(parsed->noauth == 3s);
  CHECK(parsed->grace_exceeded == 3600s);
  CHECK(parsed->invalid_user == 8s);
  CHECK(parsed->refuse_connection == 9s);
  CHECK(parsed->max == 5400s);
  CHECK(parsed->min == 20s);
  CHECK(parsed->max_sources4 == 100);
  CHECK(parsed->max_sources6 == 200);
  CHECK(parsed->overflow4 == PenaltyOverflow::deny_all);
  CHECK(parsed->overflow6 == PenaltyOverflow::deny_all);
  auto again = PenaltyConfig::parse(parsed->to_string());
  REQUIRE(again.ok());
  CHECK(*again == *parsed);
}

TEST_CASE("unnamed penalty fields keep their defaults and the first repeat wins, as in sshd",
          "[policy][penalties]") {
  auto parsed = PenaltyConfig::parse("  crash:10s   crash:20s\tmin:1s ");
  REQUIRE(parsed.ok());
  CHECK(parsed->crash == 10s);
  CHECK(parsed->min == 1s);
  CHECK(parsed->noauth == 1s);
  CHECK(parsed->max == 600s);
}

TEST_CASE("yes and no switch penalties and must come last", "[policy][penalties]") {
  auto no = PenaltyConfig::parse("no");
  REQUIRE(no.ok());
  CHECK_FALSE(no->enabled);
  CHECK(no->to_string() == "no");
  auto yes = PenaltyConfig::parse("yes");
  REQUIRE(yes.ok());
  CHECK(*yes == PenaltyConfig{});
  auto empty = PenaltyConfig::parse("");
  REQUIRE(empty.ok());
  CHECK(*empty == PenaltyConfig{});
  // servconf.c compares without case, and refuses yes/no only when a word follows: after a
  // term, which has already enabled penalties, a trailing "no" changes nothing.
  auto upper = PenaltyConfig::parse("NO");
  REQUIRE(upper.ok());
  CHECK_FALSE(upper->enabled);
  auto trailing = PenaltyConfig::parse("crash:5s no");
  REQUIRE(trailing.ok());
  CHECK(trailing->enabled);
  CHECK(trailing->crash == 5s);
  auto trailing_yes = PenaltyConfig::parse("crash:5s Yes");
  REQUIRE(trailing_yes.ok());
  CHECK(trailing_yes->enabled);
}

TEST_CASE("overflow6 follows overflow unless it is given", "[policy][penalties]") {
  auto both = PenaltyConfig::parse("overflow:deny-all");
  REQUIRE(both.ok());
  CHECK(both->overflow4 == PenaltyOverflow::deny_all);
  CHECK(both->overflow6 == PenaltyOverflow::deny_all);
  auto apart = PenaltyConfig::parse("overflow6:permissive overflow:deny-all");
  REQUIRE(apart.ok());
  CHECK(apart->overflow4 == PenaltyOverflow::deny_all);
  CHECK(apart->overflow6 == PenaltyOverflow::permissive);
}

TEST_CASE("PerSourcePenalties accepts OpenSSH 10's forms", "[policy][penalties]") {
  using std::chrono::microseconds;
  auto [text, field, expected] = GENERATE(table<std::string, std::string, long long>({
      {"crash:0.5s", "crash", 500000},
      {"crash:.5", "crash", 500000},
      {"crash:0.25", "crash", 250000},
      {"authfail:1m0.5s", "authfail", 60500000},
      {"authfail:30s1m", "authfail", 90000000},
      {"authfail:1m1m", "authfail", 120000000},
      {"noauth:2H", "noauth", 7200000000},
      {"invaliduser:1.5", "invaliduser", 1500000},
      {"refuseconnection:0", "refuseconnection", 0},
      {"grace-exceeded:1w", "grace-exceeded", 604800000000},
      {"min:0.000001s", "min", 1},
      {"max:99999999999w", "max", 2147483647000000},
      {"max-sources4:+5", "max-sources4", 5},
      {"max-sources6:-0", "max-sources6", 0},
      {"max-sources4:2147483647", "max-sources4", 2147483647},
  }));
  auto parsed = PenaltyConfig::parse(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->enabled);
  long long got = -1;
  if (field == "crash") got = parsed->crash.count();
  if (field == "authfail") got = parsed->authfail.count();
  if (field == "noauth") got = parsed->noauth.count();
  if (field == "invaliduser") got = parsed->invalid_user.count();
  if (field == "refuseconnection") got = parsed->refuse_connection.count();
  if (field == "grace-exceeded") got = parsed->grace_exceeded.count();
  if (field == "min") got = parsed->min.count();
  if (field == "max") got = parsed->max.count();
  if (field == "max-sources4") got = parsed->max_sources4;
  if (field == "max-sources6") got = parsed->max_sources6;
  CHECK(got == expected);
}

TEST_CASE("sub-second penalties format and parse back", "[policy][penalties]") {
  auto parsed = PenaltyConfig::parse("crash:0.5s authfail:90.25 noauth:2m0.125s");
  REQUIRE(parsed.ok());
  CHECK(parsed->to_string() ==
        "crash:0.5s authfail:1m30.25s noauth:2m0.125s grace-exceeded:10s invaliduser:5s "
        "refuseconnection:10s max:10m min:15s max-sources4:65536 max-sources6:65536 "
        "overflow:permissive overflow6:permissive");
  auto again = PenaltyConfig::parse(parsed->to_string());
  REQUIRE(again.ok());
  CHECK(*again == *parsed);
}

TEST_CASE("bad PerSourcePenalties values give golden errors", "[policy][penalties]") {
  auto [text, error] = GENERATE(table<std::string, std::string>({
      {"no crash:5s", "\"no\" must appear alone in \"no crash:5s\""},
      {"yes no", "\"yes\" must appear alone in \"yes no\""},
      {"No crash:5s", "\"No\" must appear alone in \"No crash:5s\""},
      {"Crash:5s", "unsupported keyword \"Crash:5s\""},
      {"crash:1.s", "crash: invalid time \"1.s\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:1.5m", "crash: invalid time \"1.5m\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:1s1s", "crash: invalid time \"1s1s\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:5s1", "crash: invalid time \"5s1\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:1e5", "crash: invalid time \"1e5\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:0x10", "crash: invalid time \"0x10\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:-1", "crash: invalid time \"-1\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:1..5", "crash: invalid time \"1..5\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"crash:.", "crash: invalid time \".\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"max-sources4:", "max-sources4: expected a number, got \"\""},
      {"max-sources4:2147483648", "max-sources4: expected a number, got \"2147483648\""},
      {"max-sources4:5x", "max-sources4: expected a number, got \"5x\""},
      {"overflow:Deny-all", "overflow: expected permissive or deny-all, got \"Deny-all\""},
      {"crash", "unsupported keyword \"crash\""},
      {"explode:5s", "unsupported keyword \"explode:5s\""},
      {"crash:5x", "crash: invalid time \"5x\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"min:", "min: invalid time \"\" (expected e.g. 90, 90s, 10m, 1h30m)"},
      {"max-sources4:lots", "max-sources4: expected a number, got \"lots\""},
      {"max-sources6:-1", "max-sources6: expected a number, got \"-1\""},
      {"overflow:deny", "overflow: expected permissive or deny-all, got \"deny\""},
      {"overflow6:", "overflow6: expected permissive or deny-all, got \"\""},
  }));
  auto parsed = PenaltyConfig::parse(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error() == error);
}

TEST_CASE("each penalty kind maps to its keyword and duration", "[policy][penalties]") {
  auto parsed = PenaltyConfig::parse(
      "crash:1 authfail:2 noauth:3 grace-exceeded:4 invaliduser:5 refuseconnection:6");
  REQUIRE(parsed.ok());
  auto [kind, word, seconds] = GENERATE(table<PenaltyKind, std::string, int>({
      {PenaltyKind::crash, "crash", 1},
      {PenaltyKind::authfail, "authfail", 2},
      {PenaltyKind::noauth, "noauth", 3},
      {PenaltyKind::grace_exceeded, "grace-exceeded", 4},
      {PenaltyKind::invalid_user, "invaliduser", 5},
      {PenaltyKind::refuse_connection, "refuseconnection", 6},
  }));
  CHECK(usherd::policy::to_string(kind) == word);
  CHECK(parsed->duration_for(kind) == std::chrono::seconds(seconds));
}

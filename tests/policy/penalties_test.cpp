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

TEST_CASE("unnamed penalty fields keep their defaults and the last repeat wins",
          "[policy][penalties]") {
  auto parsed = PenaltyConfig::parse("  crash:10s   crash:20s\tmin:1s ");
  REQUIRE(parsed.ok());
  CHECK(parsed->crash == 20s);
  CHECK(parsed->min == 1s);
  CHECK(parsed->noauth == 1s);
  CHECK(parsed->max == 600s);
}

TEST_CASE("yes and no switch penalties and must appear alone", "[policy][penalties]") {
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
}

TEST_CASE("bad PerSourcePenalties values give golden errors", "[policy][penalties]") {
  auto [text, error] = GENERATE(table<std::string, std::string>({
      {"no crash:5s", "\"no\" must appear alone in \"no crash:5s\""},
      {"crash:5s yes", "\"yes\" must appear alone in \"crash:5s yes\""},
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
  auto [kind, word, seconds] = GENERATE(table<PenaltyKind, std::string, long>({
      {PenaltyKind::crash, "crash", 1},
      {PenaltyKind::authfail, "authfail", 2},
      {PenaltyKind::noauth, "noauth", 3},
      {PenaltyKind::grace_exceeded, "grace-exceeded", 4},
      {PenaltyKind::invalid_user, "invaliduser", 5},
      {PenaltyKind::refuse_connection, "refuseconnection", 6},
  }));
  CHECK(usherd::policy::to_string(kind) == word);
  CHECK(parsed->duration_for(kind).count() == seconds);
}

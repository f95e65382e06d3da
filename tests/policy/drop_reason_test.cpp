// Tests for policy/drop_reason: the stable log words.
#include "policy/drop_reason.h"

#include "tests/catch.h"

#include <string>

using usherd::policy::DropReason;

TEST_CASE("drop reasons log as their fixed words and parse back", "[policy][reason]") {
  auto [reason, word] = GENERATE(table<DropReason, std::string>({
      {DropReason::acl, "acl"},
      {DropReason::penalty, "penalty"},
      {DropReason::rate, "rate"},
      {DropReason::max_connections, "max-connections"},
      {DropReason::per_source_connections, "per-source-connections"},
      {DropReason::per_source_startups, "per-source-startups"},
      {DropReason::startups_full, "startups-full"},
      {DropReason::startups_early_drop, "startups-early-drop"},
      {DropReason::spawn_failed, "spawn-failed"},
  }));
  CHECK(to_string(reason) == word);
  CHECK(usherd::policy::parse_drop_reason(word) == reason);
}

TEST_CASE("an unknown word is no drop reason", "[policy][reason]") {
  CHECK_FALSE(usherd::policy::parse_drop_reason("Maxstartups").has_value());
  CHECK_FALSE(usherd::policy::parse_drop_reason("").has_value());
}

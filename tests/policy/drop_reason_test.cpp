// Tests for policy/drop_reason: the stable log words.
#include "policy/drop_reason.h"

#include "tests/catch.h"

#include <algorithm>
#include <string>
#include <vector>

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
      {DropReason::queue_full, "queue-full"},
      {DropReason::queue_early_drop, "queue-early-drop"},
      {DropReason::queue_timeout, "queue-timeout"},
      {DropReason::spawn_failed, "spawn-failed"},
  }));
  CHECK(to_string(reason) == word);
  CHECK(usherd::policy::parse_drop_reason(word) == reason);
}

TEST_CASE("every drop reason has a word of its own", "[policy][reason]") {
  // A counter array sized kDropReasonCount must cover every value: each index names a distinct
  // word that parses back to that index, and the one past the end is unknown.
  std::vector<std::string> words;
  for (std::size_t i = 0; i < usherd::policy::kDropReasonCount; ++i) {
    const auto reason = static_cast<DropReason>(i);
    const std::string word(to_string(reason));
    CHECK(word != "unknown");
    CHECK(usherd::policy::parse_drop_reason(word) == reason);
    CHECK(std::find(words.begin(), words.end(), word) == words.end());
    words.push_back(word);
  }
  CHECK(to_string(static_cast<DropReason>(usherd::policy::kDropReasonCount)) == "unknown");
}

TEST_CASE("an unknown word is no drop reason", "[policy][reason]") {
  CHECK_FALSE(usherd::policy::parse_drop_reason("Maxstartups").has_value());
  CHECK_FALSE(usherd::policy::parse_drop_reason("").has_value());
}

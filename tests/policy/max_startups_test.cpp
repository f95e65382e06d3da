// Tests for policy/max_startups: OpenSSH's MaxStartups syntax, validation and drop curve.
#include "policy/max_startups.h"

#include "tests/catch.h"

#include <string>

using usherd::policy::MaxStartups;

TEST_CASE("MaxStartups parses start:rate:full and a single number as N:30:N",
          "[policy][startups]") {
  auto [text, start, rate, full, canonical] =
      GENERATE(table<std::string, unsigned, unsigned, unsigned, std::string>({
          {"10:30:100", 10, 30, 100, "10:30:100"},
          {"4:50:8", 4, 50, 8, "4:50:8"},
          {"1:100:1", 1, 100, 1, "1:100:1"},
          {"5:1:5", 5, 1, 5, "5:1:5"},
          {"20", 20, 30, 20, "20:30:20"},
          {"1", 1, 30, 1, "1:30:1"},
      }));
  auto parsed = MaxStartups::parse(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->start == start);
  CHECK(parsed->rate == rate);
  CHECK(parsed->full == full);
  CHECK(parsed->to_string() == canonical);
}

TEST_CASE("MaxStartups defaults to 10:30:100", "[policy][startups]") {
  CHECK(MaxStartups{}.to_string() == "10:30:100");
}

TEST_CASE("MaxStartups rejects what sshd rejects, with golden errors", "[policy][startups]") {
  auto [text, error] = GENERATE(table<std::string, std::string>({
      {"20:30:10", "start must not exceed full in \"20:30:10\""},
      {"10:0:100", "rate must be between 1 and 100 in \"10:0:100\""},
      {"10:101:100", "rate must be between 1 and 100 in \"10:101:100\""},
      {"0:30:100", "start must be greater than 0 in \"0:30:100\""},
      {"0:30:0", "start must be greater than 0 in \"0:30:0\""},
      {"0", "start must be greater than 0 in \"0\""},
      {"", "expected start:rate:full or a single number, got \"\""},
      {"10:30", "expected start:rate:full or a single number, got \"10:30\""},
      {"10:30:100:1", "expected start:rate:full or a single number, got \"10:30:100:1\""},
      {"-1", "expected start:rate:full or a single number, got \"-1\""},
      {"ten", "expected start:rate:full or a single number, got \"ten\""},
      {"10 :30:100", "expected start:rate:full or a single number, got \"10 :30:100\""},
      {"99999999999", "expected start:rate:full or a single number, got \"99999999999\""},
  }));
  auto parsed = MaxStartups::parse(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error() == error);
}

TEST_CASE("the drop probability of 10:30:100 follows sshd's integer formula",
          "[policy][startups]") {
  const MaxStartups m{10, 30, 100};
  auto [n, percent] = GENERATE(table<unsigned, unsigned>({
      {0, 0},
      {9, 0},
      {10, 30},
      {11, 30},
      {12, 31},
      {13, 32},
      {19, 37},
      {40, 53},
      {55, 65},
      {70, 76},
      {90, 92},
      {98, 98},
      {99, 99},
      {100, 100},
      {500, 100},
  }));
  CHECK(m.drop_probability_percent(n) == percent);
}

TEST_CASE("the drop probability of 4:50:8 at every n", "[policy][startups]") {
  const MaxStartups m{4, 50, 8};
  auto [n, percent] = GENERATE(table<unsigned, unsigned>({
      {0, 0},
      {3, 0},
      {4, 50},
      {5, 62},
      {6, 75},
      {7, 87},
      {8, 100},
      {9, 100},
  }));
  CHECK(m.drop_probability_percent(n) == percent);
}

TEST_CASE("rate 100 drops everything at or above start", "[policy][startups]") {
  const MaxStartups m{5, 100, 50};
  auto [n, percent] = GENERATE(table<unsigned, unsigned>({
      {4, 0},
      {5, 100},
      {6, 100},
      {49, 100},
      {50, 100},
  }));
  CHECK(m.drop_probability_percent(n) == percent);
}

TEST_CASE("a single-number MaxStartups is a hard cap with no random window", "[policy][startups]") {
  auto m = MaxStartups::parse("3");
  REQUIRE(m.ok());
  CHECK(m->drop_probability_percent(2) == 0);
  CHECK(m->drop_probability_percent(3) == 100);
}

TEST_CASE("PerSourceMaxStartups is a positive number or none", "[policy][startups]") {
  auto none = usherd::policy::parse_per_source_max_startups("none");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  auto three = usherd::policy::parse_per_source_max_startups("3");
  REQUIRE(three.ok());
  CHECK(*three == std::optional<unsigned>(3));
  auto text = GENERATE(as<std::string>{}, "0", "", "-2", "x", "3 ");
  auto bad = usherd::policy::parse_per_source_max_startups(text);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "expected a positive number or \"none\", got \"" + text + "\"");
}

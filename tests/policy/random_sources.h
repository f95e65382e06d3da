// RandomSource implementations for the policy tests: a seeded generator and a script.
#pragma once

#include "tests/catch.h"

#include <cstdint>
#include <deque>
#include <random>

#include "policy/random_source.h"

namespace usherd::policy::testing {

/// std::mt19937 behind RandomSource: deterministic for a given seed.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::uint32_t seed) : engine_(seed) {}
  std::uint32_t uniform(std::uint32_t bound) override {
    ++draws;
    return std::uniform_int_distribution<std::uint32_t>(0, bound - 1)(engine_);
  }
  int draws = 0;

 private:
  std::mt19937 engine_;
};

/// Returns the scripted values in order; a draw beyond the script fails the test.
class ScriptedRandom final : public RandomSource {
 public:
  ScriptedRandom(std::initializer_list<std::uint32_t> values) : values_(values) {}
  std::uint32_t uniform(std::uint32_t bound) override {
    ++draws;
    REQUIRE_FALSE(values_.empty());
    CHECK(bound == 100);
    const auto value = values_.front();
    values_.pop_front();
    return value;
  }
  int draws = 0;
  std::size_t left() const { return values_.size(); }

 private:
  std::deque<std::uint32_t> values_;
};

}  // namespace usherd::policy::testing

// RandomSource: where the admission engine's early-drop draws come from.
//
// policy/ owns no random number generator: the supervisor passes one in (arc4random-like in
// production), and tests pass a seeded or scripted source, so every drop is reproducible.
#pragma once

#include <cstdint>

namespace usherd::policy {

/// A source of uniform random integers.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  /// A uniformly distributed integer in [0, bound), like arc4random_uniform(3); bound > 0.
  virtual std::uint32_t uniform(std::uint32_t bound) = 0;
};

}  // namespace usherd::policy

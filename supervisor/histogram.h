// A Prometheus histogram with fixed buckets (seconds), cumulative on output.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace usherd::supervisor {

class Histogram {
 public:
  /// Upper bounds in seconds; +Inf is implicit.
  static constexpr std::array<double, 12> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
                                                     0.1,    0.5,   1,      5,     30,   120};

  /// Records one observation.
  void observe(double seconds);
  /// Appends the _bucket/_sum/_count lines for metric name with extra labels ("" or
  /// `socket="ssh.socket"`).
  void render(std::string& out, std::string_view name, std::string_view labels) const;
  /// Number of observations.
  std::uint64_t count() const { return count_; }

 private:
  std::array<std::uint64_t, kBounds.size()> buckets_{};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace usherd::supervisor

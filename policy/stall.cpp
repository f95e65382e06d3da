// See stall.h.
#include "policy/stall.h"

#include <algorithm>

namespace usherd::policy {

std::vector<std::uint64_t> choose_stalled(std::vector<StartupProgress> startups, TimePoint now,
                                          const StallConfig& config, std::size_t needed) {
  std::vector<std::uint64_t> out;
  if (!config.enabled() || needed == 0) return out;
  std::erase_if(startups, [&](const StartupProgress& s) {
    if (s.exempt) return true;
    if (s.client_gone) return false;
    return !s.bytes_received || *s.bytes_received >= config.bytes ||
           now - s.admitted_at < config.after;
  });
  std::stable_sort(startups.begin(), startups.end(),
                   [](const StartupProgress& a, const StartupProgress& b) {
                     if (a.client_gone != b.client_gone) return a.client_gone;
                     return a.admitted_at < b.admitted_at;
                   });
  for (const auto& s : startups) {
    if (out.size() == needed) break;
    out.push_back(s.key);
  }
  return out;
}

}  // namespace usherd::policy

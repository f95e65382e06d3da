// The log words of DropReason.
#include "policy/drop_reason.h"

#include <array>

namespace usherd::policy {

namespace {

constexpr std::array<std::string_view, kDropReasonCount> kWords = {
    "acl",
    "penalty",
    "rate",
    "max-connections",
    "per-source-connections",
    "per-source-startups",
    "startups-full",
    "startups-early-drop",
    "queue-full",
    "queue-early-drop",
    "queue-timeout",
    "peer-closed",
    "spawn-failed",
};

static_assert(static_cast<std::size_t>(DropReason::spawn_failed) + 1 == kDropReasonCount);

}  // namespace

std::string_view to_string(DropReason reason) {
  const auto index = static_cast<std::size_t>(reason);
  return index < kWords.size() ? kWords[index] : "unknown";
}

std::optional<DropReason> parse_drop_reason(std::string_view word) {
  for (std::size_t i = 0; i < kWords.size(); ++i) {
    if (kWords[i] == word) return static_cast<DropReason>(i);
  }
  return std::nullopt;
}

}  // namespace usherd::policy

// Accumulation, lazy expiry and overflow of PenaltyBox.
#include "policy/penalty_box.h"

namespace usherd::policy {

void PenaltyBox::configure(const PenaltyConfig& config, const NetBlockSize& block_size,
                           std::vector<Cidr> exempt) {
  config_ = config;
  block_size_ = block_size;
  exempt_ = std::move(exempt);
}

bool PenaltyBox::is_exempt(const IpAddress& peer) const {
  return any_contains(exempt_, peer);
}

void PenaltyBox::expire(TimePoint now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    const IpAddress block = by_expiry_.begin()->second;
    by_expiry_.erase(by_expiry_.begin());
    entries_.erase(block);
    --count_for(block.family());
  }
}

PenaltyRecord PenaltyBox::penalise(const IpAddress& peer, PenaltyKind kind, TimePoint now) {
  if (!config_.enabled || is_exempt(peer)) return PenaltyRecord::ignored;
  const auto secs = config_.duration_for(kind);
  if (secs.count() <= 0) return PenaltyRecord::ignored;
  expire(now);
  const IpAddress block = mask_to_block(peer, block_size_);
  const bool v4 = block.is_v4();
  const std::size_t max_sources = v4 ? config_.max_sources4 : config_.max_sources6;
  const PenaltyOverflow overflow = v4 ? config_.overflow4 : config_.overflow6;
  // srclimit_penalise(): under deny-all a full table takes nothing more, not even more time
  // for a block it holds (the whole family is refused meanwhile).
  if (count_for(block.family()) >= max_sources && overflow == PenaltyOverflow::deny_all)
    return PenaltyRecord::table_full;
  auto it = entries_.find(block);
  if (it == entries_.end()) {
    Entry entry{now + secs, kind, secs > config_.min, v4 ? block_size_.v4 : block_size_.v6};
    entries_.emplace(block, entry);
    by_expiry_.emplace(entry.expiry, block);
    ++count_for(block.family());
    // permissive: the new block goes in, and the family's soonest-expiring entries make room
    // for it (srclimit_early_expire_penalties); it may be the soonest itself.
    bool kept = true;
    for (auto e = by_expiry_.begin();
         count_for(block.family()) > max_sources && e != by_expiry_.end();) {
      if (e->second.family() != block.family()) {
        ++e;
        continue;
      }
      if (e->second == block) kept = false;
      entries_.erase(e->second);
      e = by_expiry_.erase(e);
      --count_for(block.family());
    }
    if (!kept) return PenaltyRecord::table_full;
    return entry.active ? PenaltyRecord::active : PenaltyRecord::pending;
  }
  Entry& entry = it->second;
  by_expiry_.erase({entry.expiry, block});
  entry.expiry += secs;
  if (entry.expiry - now > config_.max) entry.expiry = now + config_.max;
  if (entry.expiry - now > config_.min) entry.active = true;
  entry.reason = kind;
  by_expiry_.emplace(entry.expiry, block);
  return entry.active ? PenaltyRecord::active : PenaltyRecord::pending;
}

bool PenaltyBox::is_refused(const IpAddress& peer, TimePoint now) {
  if (!config_.enabled || is_exempt(peer)) return false;
  expire(now);
  if (peer.is_v4()) {
    if (config_.overflow4 == PenaltyOverflow::deny_all && count4_ >= config_.max_sources4) {
      return true;
    }
  } else if (config_.overflow6 == PenaltyOverflow::deny_all && count6_ >= config_.max_sources6) {
    return true;
  }
  auto it = entries_.find(mask_to_block(peer, block_size_));
  return it != entries_.end() && it->second.active;
}

std::vector<PenalisedSource> PenaltyBox::active_penalties(TimePoint now) const {
  std::vector<PenalisedSource> result;
  for (const auto& [expiry, block] : by_expiry_) {
    if (expiry <= now) continue;
    const Entry& entry = entries_.at(block);
    if (!entry.active) continue;
    result.push_back(PenalisedSource{Cidr(block, entry.prefix_length), expiry, entry.reason, true});
  }
  return result;
}

}  // namespace usherd::policy

// PenaltyBox: OpenSSH's per-source penalty table (srclimit.c srclimit_penalise() and
// srclimit_penalty_check_allow()), driven by a caller-supplied clock.
//
// Penalties are keyed by source block (the peer masked by PerSourceNetBlockSize=).
// Accumulation, exactly as OpenSSH:
//   - a new entry expires at now + secs and is active (refuses its block) only if secs > min;
//   - an existing entry's expiry grows by secs, capped at now + max, and becomes active once
//     expiry - now > min.
// An entry is forgotten when now reaches its expiry; expiry is lazy (every call first drops
// the entries that have expired), so no timer is needed.
// The table is bounded: at most max-sources4 IPv4 and max-sources6 IPv6 blocks. When a
// family's table is full, overflow permissive records a new block and evicts the family's
// soonest-expiring entry to make room; overflow deny-all records nothing (not even more time
// for a block it holds) and refuses every source of that family until entries expire.
// Sources in the penalty exempt list are never penalised nor refused; disabled penalties
// ("PerSourcePenalties=no") record and refuse nothing.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "policy/address.h"
#include "policy/penalties.h"
#include "policy/time_point.h"

namespace usherd::policy {

/// A source block with a penalty, as reported by penalised_sources().
struct PenalisedSource {
  Cidr block;          ///< The penalised block.
  TimePoint expiry;    ///< When the penalty ends.
  PenaltyKind reason;  ///< What earned its most recent penalty.
  bool active;         ///< True when the block is refused.
};

/// What penalise() did.
enum class PenaltyRecord {
  ignored,     ///< Disabled, exempt, or a zero penalty: nothing recorded.
  pending,     ///< Recorded, but the accumulated penalty is not above min yet.
  active,      ///< Recorded, and the block is now refused.
  table_full,  ///< The family's table is full: deny-all recorded nothing, or permissive
               ///< evicted this very block as the soonest to expire.
};

/// The penalty table.
class PenaltyBox {
 public:
  /// Replaces the configuration; existing entries are kept (under their old block keys).
  void configure(const PenaltyConfig& config, const NetBlockSize& block_size,
                 std::vector<Cidr> exempt);

  /// Penalises the block of peer for kind at now.
  PenaltyRecord penalise(const IpAddress& peer, PenaltyKind kind, TimePoint now);
  /// True when peer must be refused at now: its block is actively penalised, or its family's
  /// table is full under overflow deny-all. Drops expired entries first.
  bool is_refused(const IpAddress& peer, TimePoint now);
  /// The blocks whose penalty is active at now, soonest expiry first.
  std::vector<PenalisedSource> active_penalties(TimePoint now) const;
  /// Entries held for family (active or not, expired ones included until the next call).
  std::size_t size(Family family) const { return family == Family::v4 ? count4_ : count6_; }

 private:
  struct Entry {
    TimePoint expiry;
    PenaltyKind reason;
    bool active;
    unsigned prefix_length;  // of the block size in force when the entry was made
  };

  void expire(TimePoint now);
  bool is_exempt(const IpAddress& peer) const;
  std::size_t& count_for(Family family) { return family == Family::v4 ? count4_ : count6_; }

  PenaltyConfig config_;
  NetBlockSize block_size_;
  std::vector<Cidr> exempt_;
  std::map<IpAddress, Entry> entries_;
  std::set<std::pair<TimePoint, IpAddress>> by_expiry_;
  std::size_t count4_ = 0;
  std::size_t count6_ = 0;
};

}  // namespace usherd::policy

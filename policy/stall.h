// Stalled startups: which of the instances still starting to end when connections wait in the
// room and no slot is free. A startup is stalled when its client has sent fewer than
// ReclaimStalledBytes= bytes in the ReclaimStalledSec= since it was admitted: it connected and
// then did next to nothing (a DHEat-style flood sends an SSH identification line and stalls;
// a real ssh client sends its key exchange, over a kilobyte, within a round trip of the
// server's). sshd's listener cannot tell: it sees its MaxStartups full and refuses everyone
// until LoginGraceTime. usherd owns every startup, so under pressure it ends the oldest
// stalled ones and gives their slots to the waiting, in turn.
//
// A startup whose client has hung up before it was ready is reclaimed first, whatever its
// age: nobody is left to serve, yet the instance would hold its slot (and whatever it is
// waiting for, such as a directory lookup) until it noticed by itself.
//
// Only under pressure: with nobody waiting a slow client keeps its slot for the whole
// StartupTimeoutSec=. Exempt sources are never reclaimed, nor a startup whose client's
// progress cannot be read (not TCP). Pure: the caller reads each client's byte count
// (TCP_INFO) and carries the choice out.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "policy/time_point.h"

namespace usherd::policy {

struct StallConfig {
  /// ReclaimStalledSec= (5s): how long a startup may show no progress before it may be
  /// reclaimed; 0 turns reclaiming off.
  std::chrono::microseconds after = std::chrono::seconds(5);
  /// ReclaimStalledBytes= (512): below this many bytes from its client a startup has made
  /// no progress. An SSH identification line is at most 255 bytes.
  std::uint64_t bytes = 512;

  bool enabled() const { return after.count() > 0; }
};

/// One startup as the caller sees it.
struct StartupProgress {
  std::uint64_t key = 0;  ///< the caller's handle
  TimePoint admitted_at;
  bool exempt = false;
  std::optional<std::uint64_t> bytes_received;  ///< from its client; nullopt: unknown
  bool client_gone = false;                     ///< its client hung up
};

/// The startups to reclaim among these, at most needed: those whose client has gone, then
/// the stalled ones, oldest first in each group.
std::vector<std::uint64_t> choose_stalled(std::vector<StartupProgress> startups, TimePoint now,
                                          const StallConfig& config, std::size_t needed);

}  // namespace usherd::policy

// The configuration the admission engine applies: global (usherd.conf) and per socket
// (a .socket unit). Plain values; parsing lives with the unit-file reader, which uses the
// parsers of address.h, max_startups.h and penalties.h.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "policy/address.h"
#include "policy/max_startups.h"
#include "policy/penalties.h"
#include "policy/stall.h"

namespace usherd::policy {

/// The waiting room: where a connection the startup budget has no room for waits for a slot
/// instead of being dropped (waiting_room.h says how turns are given). Off here, so an engine
/// built by a caller that does not know the room (and would not start its tickets) keeps
/// the drop rules; usherd.conf turns it on by default (units/config.h).
struct WaitingRoomConfig {
  bool enabled = false;  ///< WaitingRoom= (usherd.conf: yes).
  /// MaxParked= (1000): connections parked on all sockets, in OpenSSH's MaxStartups syntax
  /// applied to the room's occupancy: a single number is a hard cap, start:rate:full adds
  /// random early drop between start and full.
  MaxStartups max_parked{1000, 30, 1000};
  std::optional<unsigned> per_source_max_parked = 100;  ///< PerSourceMaxParked= (100; per block).
  std::chrono::microseconds max_wait = std::chrono::seconds(8);  ///< MaxParkedWait= (8s).
};

/// Limits shared by every socket.
struct GlobalConfig {
  MaxStartups max_startups;                         ///< MaxStartups= (10:30:100).
  std::optional<unsigned> per_source_max_startups;  ///< PerSourceMaxStartups= (none).
  NetBlockSize net_block_size;                      ///< PerSourceNetBlockSize= (32:128).
  std::vector<Cidr> exempt_sources;                 ///< ExemptSources=.
  unsigned reserved_startups = 2;                   ///< ReservedStartups=.
  PenaltyConfig penalties;                          ///< PerSourcePenalties=.
  std::vector<Cidr> penalty_exempt_sources;         ///< PerSourcePenaltyExemptList=.
  WaitingRoomConfig waiting_room;                   ///< WaitingRoom= and its bounds.
  StallConfig stall;                                ///< ReclaimStalledSec=, ReclaimStalledBytes=.
};

/// Limits of one listening socket.
struct SocketConfig {
  unsigned max_connections = 64;                    ///< MaxConnections=.
  unsigned max_connections_per_source = 0;          ///< MaxConnectionsPerSource= (0: off).
  std::optional<MaxStartups> max_startups;          ///< X-MaxStartups= (this socket's own).
  std::optional<unsigned> per_source_max_startups;  ///< X-PerSourceMaxStartups= (overrides).
  std::vector<Cidr> ip_address_allow;               ///< IPAddressAllow=.
  std::vector<Cidr> ip_address_deny;                ///< IPAddressDeny=.
  std::optional<std::chrono::microseconds> trigger_limit_interval;  ///< TriggerLimitIntervalSec=.
  std::optional<unsigned> trigger_limit_burst;                      ///< TriggerLimitBurst=.
};

}  // namespace usherd::policy

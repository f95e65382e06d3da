// DropReason: why a connection was refused, in the order the admission rules are applied.
//
// to_string() gives the stable lowercase word that appears in logs ("reason=...") and that
// fail2ban filters match, so the words never change once released.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace usherd::policy {

/// Why a connection was dropped; the order is the order of the rules.
enum class DropReason {
  acl,                     ///< Outside IPAddressAllow= / inside IPAddressDeny=.
  penalty,                 ///< The source block is serving a penalty.
  rate,                    ///< Over TriggerLimitBurst= within TriggerLimitIntervalSec=.
  max_connections,         ///< Live instances of the socket at MaxConnections=.
  per_source_connections,  ///< Live instances from this address at MaxConnectionsPerSource=.
  per_source_startups,     ///< Startups from this block at PerSourceMaxStartups=.
  startups_full,           ///< Startups at full (global, or the socket's X-MaxStartups=).
  startups_early_drop,     ///< Random early drop between start and full.
  queue_full,              ///< No startup slot, and the waiting room (or the block's share of
                           ///< it) is full, or this connection was pushed out of it.
  queue_early_drop,        ///< No startup slot, and the room's random early drop (MaxParked=
                           ///< start:rate:full between start and full) refused it.
  queue_timeout,           ///< Parked, and no slot came within MaxParkedWait=.
  peer_closed,             ///< The client had closed before usherd accepted it, for a
                           ///< service that must hear from it before it can become ready.
  spawn_failed,            ///< Admitted, but the instance could not be started.
};

/// Number of DropReason values, for per-reason counter arrays.
inline constexpr std::size_t kDropReasonCount = 13;

/// "acl", "penalty", "rate", "max-connections", "per-source-connections",
/// "per-source-startups", "startups-full", "startups-early-drop", "queue-full",
/// "queue-early-drop", "queue-timeout", "peer-closed", "spawn-failed".
std::string_view to_string(DropReason reason);

/// The DropReason whose to_string() is word, if any.
std::optional<DropReason> parse_drop_reason(std::string_view word);

}  // namespace usherd::policy

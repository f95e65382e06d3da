// sshd's listener log lines, so that what usherd decides for sshd's connections is logged in
// the words log parsers already read (fail2ban's sshd filter, CrowdSec's sshd-logs parser).
// Pure formatters and one rate limiter; the supervisor decides when to log and logs.
//
// The wording is OpenSSH 10's (the same from 9.8 through 10.5):
//   sshd.c drop_connection():
//     "drop connection #N from [PEER]:PORT on [LOCAL]:PORT REASON"
//     REASON is the penalty's reason ("penalty: failed authentication"), "too many penalised
//     addresses" (a full deny-all table), or "Maxstartups" (MaxStartups or
//     PerSourceMaxStartups; 9.2 said "past MaxStartups", 9.8 and 9.9 "past Maxstartups").
//     "REASON logging rate-limited: additional N connections dropped" ends a rate-limited run,
//     REASON being "PerSourcePenalties" or "Maxstartups".
//   srclimit.c srclimit_penalise() (syslog tag "sshd", the function name prefixed by sshd's
//   log_f macros):
//     "srclimit_penalise: ipv4: new 192.0.2.7/32 active penalty of 90.000 seconds for
//      penalty: caused crash"                        (10.3+; 10.0-10.2 print "%d seconds")
//     "srclimit_penalise: 192.0.2.7/32: activating ipv4 penalty of 20.000 seconds for
//      penalty: failed authentication"               (an existing entry crossing min:)
//     "srclimit_penalise: ipv4 penalty table full, cannot penalise 192.0.2.7/32 for
//      penalty: caused crash"
//   The address is the peer's own address with the block's prefix length (addr_masklen_ntop()
//   prints the unmasked address), IPv4-mapped peers unmapped as sshd sees them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/address.h"
#include "policy/drop_reason.h"
#include "policy/penalties.h"

namespace usherd::policy {

/// An address and port, as sshd's log lines show the two ends of a connection.
struct Endpoint {
  IpAddress address;       ///< The address (an IPv4-mapped one is shown unmapped).
  std::uint16_t port = 0;  ///< The port.
};

/// The reason srclimit.c gives a penalty of kind: "penalty: caused crash",
/// "penalty: failed authentication", "penalty: connections without attempting
/// authentication", "penalty: exceeded LoginGraceTime", "penalty: attempted authentication by
/// invalid user", "penalty: connection prohibited by RefuseConnection".
std::string_view sshd_penalty_reason(PenaltyKind kind);

/// The REASON sshd's drop line gives for a drop usherd made: for penalty, the reason of the
/// penalty the block serves (table_full: "too many penalised addresses"); for
/// per-source-startups, startups-full, startups-early-drop and the waiting room's queue-full,
/// queue-early-drop and queue-timeout, "Maxstartups". nullopt for
/// drops sshd never makes (acl, rate, max-connections, per-source-connections, spawn-failed).
std::optional<std::string> sshd_drop_reason(DropReason reason,
                                            std::optional<PenaltyKind> penalty = std::nullopt,
                                            bool table_full = false);

/// sshd's drop_connection() line: "drop connection #N from [PEER]:PORT on [LOCAL]:PORT REASON";
/// startups is the count before this connection (usherd's Decision::startups).
std::string format_sshd_drop(unsigned startups, const Endpoint& peer, const Endpoint& local,
                             std::string_view reason);

/// The summary closing a rate-limited run: "Maxstartups logging rate-limited: additional N
/// connections dropped"; what is "Maxstartups" or "PerSourcePenalties".
std::string format_sshd_drops_suppressed(std::string_view what, unsigned dropped);

/// What srclimit_penalise() did, for its log line.
enum class SshdPenaltyEvent {
  new_active,    ///< A new entry above min: ("new ... active penalty").
  new_deferred,  ///< A new entry at or below min: ("new ... deferred penalty").
  activating,    ///< An existing entry crossed min: ("activating ... penalty").
  table_full,    ///< deny-all and the table is full ("penalty table full, cannot penalise").
};

/// srclimit_penalise()'s line for peer in a block of prefix_length bits; seconds is the new
/// penalty (new_*) or what remains of the entry (activating), printed "%.3f" as 10.3 does.
std::string format_sshd_penalty(SshdPenaltyEvent event, const IpAddress& peer,
                                unsigned prefix_length, std::chrono::duration<double> seconds,
                                PenaltyKind kind);

/// log.c log_ratelimit(): sshd's rate limit of its drop lines, driven by the caller's clock
/// in whole seconds. sshd uses (4, 60, 20, 300) for MaxStartups drops and (8, 60, 30, 120)
/// for penalty drops.
class SshdLogRateLimit {
 public:
  /// What log_ratelimit() returned.
  struct Verdict {
    bool suppress = false;  ///< True: do not log this line (sshd logs it at DEBUG3).
    unsigned dropped = 0;   ///< Non-zero: log the summary with this count first.
  };

  /// threshold events accumulate (decaying one a second, capped at max_accum) before lines
  /// are suppressed; suppression ends hysteresis seconds after the rate falls below the
  /// threshold; while suppressing, one line is let through every log_every seconds.
  SshdLogRateLimit(unsigned threshold, unsigned max_accum, unsigned hysteresis, unsigned log_every);
  /// sshd's limiter for "Maxstartups" drops.
  static SshdLogRateLimit for_max_startups() { return {4, 60, 20, 5 * 60}; }
  /// sshd's limiter for "PerSourcePenalties" drops.
  static SshdLogRateLimit for_penalties() { return {8, 60, 30, 2 * 60}; }

  /// Counts one event at now (seconds on any monotonic scale, > 0).
  Verdict event(std::int64_t now);

 private:
  unsigned threshold_;
  unsigned max_accum_;
  unsigned hysteresis_;
  unsigned log_every_;
  unsigned accumulated_ = 0;
  std::int64_t last_event_ = 0;
  bool active_ = false;
  std::int64_t last_log_ = 0;
  std::int64_t hysteresis_start_ = 0;
  unsigned suppressed_ = 0;
};

}  // namespace usherd::policy

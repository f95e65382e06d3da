// AdmissionEngine: decides, after accept and before spawn, whether a connection may start an
// instance, and tracks the admitted ones until they end.
//
// Rules, in order; the first that refuses names the DropReason:
//   acl                     IPAddressAllow= matches -> allowed; else IPAddressDeny= matches ->
//                           refused; else allowed (systemd's semantics).
//   penalty                 the peer's block is serving a PerSourcePenalties= penalty, or the
//                           penalty table of its family is full under overflow deny-all.
//   rate                    more than TriggerLimitBurst= connections on this socket within
//                           TriggerLimitIntervalSec= (fixed window; off unless both are set).
//   max-connections         live instances of this socket >= MaxConnections=.
//   per-source-connections  live instances of this socket from this exact address >=
//                           MaxConnectionsPerSource= (0: off).
//   per-source-startups     startups (on all sockets) from the peer's block >= the socket's
//                           X-PerSourceMaxStartups=, or else the global PerSourceMaxStartups=.
//   startups-full           global startups >= full, or this socket's startups >= its
//                           X-MaxStartups= full.
//   startups-early-drop     OpenSSH's curve: the global MaxStartups= first, then the socket's
//                           own; n is the startups before this connection, and the connection
//                           is dropped iff random.uniform(100) < p. A draw is taken only when
//                           0 < p < 100.
// ExemptSources= skip penalty, rate, both per-source rules and early drop, and may exceed
// full and MaxConnections= by ReservedStartups=; IPAddressDeny= still applies to them.
// Peers are unmapped (::ffff:a.b.c.d -> a.b.c.d) before any rule.
//
// Lifecycle of an admitted connection (an instance): admit() returns its InstanceId and it
// counts as a startup and a live instance; mark_ready() ends the startup; spawn_failed()
// forgets it and counts a spawn-failed drop; release() forgets it and, if it ended before it
// was ready, penalises its block with what its service's exit-outcome table says
// (exit_outcomes.h: OpenSSH 10's for sshd, exit -> noauth and signal -> crash otherwise;
// startup timeout -> grace-exceeded in both). ExemptSources are never penalised. adopt() re-enters
// instances that survived a supervisor restart, without applying any rule.
//
// Reconfiguration: reconfigure() replaces the global config; add/update/remove_socket change
// sockets while live instances keep counting. A removed socket's instances count globally
// until they are released; its state is forgotten with its last instance.
//
// Bounds: the per-source tables for connections and startups hold only live entries, whose
// number MaxConnections= and MaxStartups= cap, so they are bounded by construction; the
// penalty table is bounded by max-sources4/6. No I/O, no clock, no RNG: time and randomness
// are parameters, and an unknown SocketId passed to admit() is a programming error
// (std::out_of_range).
//
// The waiting room (WaitingRoom=yes, the default; waiting_room.h gives the order of turns):
// a connection from a source not in ExemptSources= that passes every rule up to
// per-source-connections, but for which the startup budget has no room (per-source-startups
// or startups-full above), is parked instead of dropped: admit() returns a ticket, nothing is
// spawned, and MaxStartups='s random early drop is not applied (full stays the most startups
// at once; the room replaces the random refusal). Parking itself is refused, in order:
//   queue-full        the block already has PerSourceMaxParked= parked, or the room is at
//                     MaxParked='s full and no larger block can be pushed out for it;
//   queue-early-drop  MaxParked='s own curve on the parked count (off for a single number).
// A parked ticket leaves the room through next_from_room() (started: it becomes an instance,
// when every rule that bounds instances and startups has room for it, in round-robin order
// between blocks; or dropped as penalty, its block penalised meanwhile), through expire() or
// next_from_room() at its deadline (queue-timeout, MaxParkedWait= after it was parked), when
// it is pushed out (queue-full, returned in the pushing Decision) or by cancel() (the client
// hung up; no drop is counted, the socket's abandoned counter is). Exempt sources never park:
// they keep ReservedStartups= and are refused as before past them.
//
// The caller's part of the contract: call next_from_room() whenever a slot may have freed
// (after mark_ready, release, spawn_failed, reconfigure, update_socket) and when
// next_room_deadline() passes. Then no parked ticket could start when admit() runs, and
// admit() admitting an arrival that fits never overtakes a ticket that could use the slot.
// Room bounds and deadlines apply to connections parked after a reconfigure(); tickets parked
// before keep theirs, and a disabled room still lets its tickets start or time out.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "policy/address.h"
#include "policy/admission_config.h"
#include "policy/drop_reason.h"
#include "policy/exit_outcomes.h"
#include "policy/ids.h"
#include "policy/penalty_box.h"
#include "policy/random_source.h"
#include "policy/rate_limit.h"
#include "policy/source_table.h"
#include "policy/time_point.h"
#include "policy/waiting_room.h"

namespace usherd::policy {

/// How an instance ended.
enum class Outcome {
  exited,            ///< It exited by itself.
  killed_by_signal,  ///< A signal killed it (a crash, if before ready).
  startup_timeout,   ///< The supervisor killed it for not becoming ready in time.
};

/// A parked connection leaving the waiting room: started or dropped.
struct RoomExit {
  TicketId ticket{};                   ///< The ticket admit() gave it.
  SocketId socket{};                   ///< Its socket.
  IpAddress peer;                      ///< The (unmapped) peer.
  std::optional<InstanceId> instance;  ///< Set when started: the instance it now is.
  std::optional<DropReason> reason;    ///< Set when dropped: queue-timeout, queue-full, penalty.
  std::chrono::microseconds waited{};  ///< Time parked, for the wait-time histogram.
  unsigned startups = 0;               ///< Global startups before it started or left.

  /// True when the connection may start its instance now.
  bool started() const { return instance.has_value(); }
};

/// The answer to admit().
struct Decision {
  std::optional<InstanceId> instance;  ///< Set when admitted.
  std::optional<TicketId> ticket;      ///< Set when parked in the waiting room.
  std::optional<DropReason> reason;    ///< Set when dropped.
  /// Another parked connection this one pushed out of the full room (reason queue-full): the
  /// caller closes it as it would a drop.
  std::optional<RoomExit> pushed_out;
  unsigned startups = 0;         ///< Global startups before this connection (n).
  unsigned socket_startups = 0;  ///< This socket's startups before this connection.
  unsigned parked = 0;           ///< Connections parked (all sockets) before this one.
  bool exempt = false;           ///< The peer is in ExemptSources=.

  /// True when the connection may start an instance.
  bool admitted() const { return instance.has_value(); }
  /// True when the connection waits in the room for next_from_room() to start it.
  bool is_parked() const { return ticket.has_value(); }
};

/// What release() did.
struct Released {
  bool found = false;                             ///< The InstanceId was live.
  bool was_ready = false;                         ///< It had become ready.
  std::optional<PenaltyKind> penalty;             ///< The penalty it earned its block, if any.
  PenaltyRecord record = PenaltyRecord::ignored;  ///< What the penalty table did with it.
};

/// Global startups, for logs ("startups=31/10:30:100") and the process title.
struct StartupsStats {
  unsigned current = 0;    ///< Startups now.
  unsigned peak = 0;       ///< Highest value current has had.
  MaxStartups configured;  ///< The global MaxStartups=.
};

/// Counters of one socket.
struct SocketStats {
  unsigned startups = 0;       ///< Instances of this socket not yet ready.
  unsigned instances = 0;      ///< Live instances of this socket.
  std::uint64_t accepted = 0;  ///< Calls to admit().
  std::uint64_t admitted = 0;  ///< Connections admitted.
  std::array<std::uint64_t, kDropReasonCount> dropped{};  ///< Drops per DropReason.
  unsigned parked = 0;             ///< Connections of this socket in the waiting room now.
  std::uint64_t parked_total = 0;  ///< Connections ever parked (a started one counts in admitted).
  std::uint64_t abandoned = 0;     ///< Parked connections whose client hung up (cancel()).

  /// Drops for reason.
  std::uint64_t dropped_for(DropReason reason) const {
    return dropped[static_cast<std::size_t>(reason)];
  }
  /// Drops for every reason, spawn-failed included.
  std::uint64_t dropped_total() const;
};

/// The waiting room as a whole, for status, the process title and metrics.
struct RoomStats {
  bool enabled = false;                      ///< WaitingRoom=.
  unsigned parked = 0;                       ///< Connections parked now.
  unsigned peak = 0;                         ///< Highest value parked has had.
  std::size_t blocks = 0;                    ///< Source blocks with parked connections now.
  std::uint64_t started = 0;                 ///< Parked connections that got a slot.
  std::chrono::microseconds waited_total{};  ///< Sum of their waits.
  std::chrono::microseconds waited_max{};    ///< Longest of their waits.
  MaxStartups configured;                    ///< MaxParked=.
  std::optional<unsigned> per_source;        ///< PerSourceMaxParked=.
  std::chrono::microseconds max_wait{};      ///< MaxParkedWait=.
};

/// What the engine knows of one live instance.
struct InstanceInfo {
  SocketId socket;                    ///< Its socket.
  IpAddress peer;                     ///< The (unmapped) peer address.
  IpAddress block;                    ///< The peer's source block when admitted.
  bool exempt = false;                ///< The peer was in ExemptSources=.
  bool ready = false;                 ///< mark_ready() was called (or adopted ready).
  TimePoint admitted_at;              ///< When admit() or adopt() took it.
  std::optional<TimePoint> ready_at;  ///< When it became ready.
};

/// The admission engine.
class AdmissionEngine {
 public:
  /// An engine with config and no sockets.
  explicit AdmissionEngine(GlobalConfig config = {});

  /// Replaces the global configuration; live instances keep counting.
  void reconfigure(GlobalConfig config);
  /// The global configuration.
  const GlobalConfig& config() const { return config_; }

  /// Registers a socket.
  SocketId add_socket(SocketConfig config);
  /// Replaces a socket's configuration, keeping its counters; false if unknown or removed.
  bool update_socket(SocketId socket, SocketConfig config);
  /// Unregisters a socket; its live instances count until released. False if unknown.
  bool remove_socket(SocketId socket);
  /// True for a registered, not removed, socket.
  bool has_socket(SocketId socket) const;

  /// Applies the rules to a connection from peer on socket at now. Precondition: has_socket().
  /// ip_peer is false for a peer without an IP address (AF_UNIX, keyed by the caller under
  /// another address): IPAddressAllow=/IPAddressDeny= do not apply to it, as systemd's IP
  /// rules never apply to AF_UNIX.
  Decision admit(SocketId socket, const IpAddress& peer, TimePoint now, RandomSource& random,
                 bool ip_peer = true);
  /// A connection whose client had closed before it was accepted, on a socket whose service
  /// must hear from the client before it can become ready: counted as accepted and dropped,
  /// as acl or penalty when those rules refuse it, else as peer-closed, its block then
  /// penalised noauth as sshd's listener penalises a child that ends without an
  /// authentication attempt (not for an exempt or non-IP peer). Nothing is started.
  Decision refuse_closed(SocketId socket, const IpAddress& peer, TimePoint now,
                         bool ip_peer = true);
  /// Starts the parked connections that fit now, round robin between blocks, and drops the
  /// ones past their deadline (queue-timeout) or now penalised; in the order decided.
  std::vector<RoomExit> next_from_room(TimePoint now);
  /// Drops the parked connections whose deadline is at or before now (queue-timeout).
  std::vector<RoomExit> expire(TimePoint now);
  /// Forgets a parked connection whose client hung up; false if it is not parked.
  bool cancel(TicketId ticket);
  /// When expire() next has something to do; nullopt when nothing is parked.
  std::optional<TimePoint> next_room_deadline() const { return room_.next_deadline(); }
  /// Ends the startup of instance; false if unknown or already ready.
  bool mark_ready(InstanceId instance, TimePoint now);
  /// Forgets an admitted instance that could not be started; counts a spawn-failed drop.
  bool spawn_failed(InstanceId instance);
  /// Forgets an instance that ended, penalising its block if it ended before ready: the
  /// penalty table maps end to (exit_outcomes.h), none when the table says so.
  Released release(InstanceId instance, const InstanceEnd& end, ExitStatusOutcomes table,
                   TimePoint now);
  /// release() with the legacy table: exited -> noauth, killed -> crash, timeout ->
  /// grace-exceeded.
  Released release(InstanceId instance, Outcome outcome, TimePoint now);
  /// Tracks an instance that survived a restart, without applying any rule; nullopt if the
  /// socket is unknown.
  std::optional<InstanceId> adopt(SocketId socket, const IpAddress& peer, bool ready,
                                  TimePoint now);
  /// Penalises peer's block for a reason the caller learned itself (e.g. an exit code).
  PenaltyRecord penalise(const IpAddress& peer, PenaltyKind kind, TimePoint now);

  /// Global startups, their peak and the configured triple.
  StartupsStats startups() const;
  /// Counters of socket (also of a removed socket still draining); nullopt if unknown.
  std::optional<SocketStats> socket_stats(SocketId socket) const;
  /// A live instance; nullopt if unknown.
  std::optional<InstanceInfo> instance(InstanceId instance) const;
  /// Number of live instances on all sockets.
  std::size_t instance_count() const { return instances_.size(); }
  /// Blocks whose penalty is active at now.
  std::vector<PenalisedSource> penalised_sources(TimePoint now) const;
  /// The waiting room's counters.
  RoomStats room_stats() const;
  /// Blocks with parked connections, most parked first.
  std::vector<ParkedBlock> parked_blocks() const { return room_.blocks(); }
  /// A parked connection; nullptr if it is not parked.
  const Ticket* parked(TicketId ticket) const { return room_.find(ticket); }
  /// Distinct source blocks with startups now (bounded by the startups).
  std::size_t tracked_startup_blocks() const { return block_startups_.size(); }

 private:
  struct SocketState {
    SocketConfig config;
    bool removed = false;
    RateLimit trigger_limit;
    SourceTable instances_by_address;
    SocketStats stats;
  };

  InstanceId track(SocketId id, SocketState& socket, const IpAddress& peer, bool exempt, bool ready,
                   TimePoint now);
  void forget(std::unordered_map<InstanceId, InstanceInfo>::iterator it);
  void forget_socket_if_drained(std::unordered_map<SocketId, SocketState>::iterator it);
  Decision park(SocketId id, SocketState& socket, const IpAddress& peer, Decision decision,
                TimePoint now, RandomSource& random);
  Turn judge(const Ticket& ticket, TimePoint now);
  bool fits(const SocketState& socket, const IpAddress& peer) const;
  RoomExit leave(const Ticket& ticket, DropReason reason, TimePoint now);
  Cidr block_of(const IpAddress& peer) const;
  bool is_exempt(const IpAddress& peer) const;
  bool should_drop_early(const MaxStartups& limits, unsigned n, RandomSource& random) const;

  GlobalConfig config_;
  PenaltyBox penalties_;
  std::unordered_map<SocketId, SocketState> sockets_;
  std::unordered_map<InstanceId, InstanceInfo> instances_;
  SourceTable block_startups_;
  unsigned startups_ = 0;
  unsigned peak_startups_ = 0;
  WaitingRoom room_;
  unsigned peak_parked_ = 0;
  std::uint64_t room_started_ = 0;
  std::chrono::microseconds room_waited_total_{};
  std::chrono::microseconds room_waited_max_{};
  std::uint32_t next_socket_ = 1;
  std::uint64_t next_instance_ = 1;
  std::uint64_t next_ticket_ = 1;
};

}  // namespace usherd::policy

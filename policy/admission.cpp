// The rules and bookkeeping of AdmissionEngine.
#include "policy/admission.h"

#include <numeric>
#include <stdexcept>
#include <utility>

namespace usherd::policy {

namespace {

void apply_trigger_limit(RateLimit& limit, const SocketConfig& config) {
  if (config.trigger_limit_interval && config.trigger_limit_burst) {
    limit.reconfigure(*config.trigger_limit_interval, *config.trigger_limit_burst);
  } else {
    limit.reconfigure(std::chrono::microseconds(0), 0);
  }
}

}  // namespace

std::uint64_t SocketStats::dropped_total() const {
  return std::accumulate(dropped.begin(), dropped.end(), std::uint64_t{0});
}

AdmissionEngine::AdmissionEngine(GlobalConfig config) {
  reconfigure(std::move(config));
}

void AdmissionEngine::reconfigure(GlobalConfig config) {
  config_ = std::move(config);
  penalties_.configure(config_.penalties, config_.net_block_size, config_.penalty_exempt_sources);
}

SocketId AdmissionEngine::add_socket(SocketConfig config) {
  const SocketId id{next_socket_++};
  SocketState& state = sockets_[id];
  apply_trigger_limit(state.trigger_limit, config);
  state.config = std::move(config);
  return id;
}

bool AdmissionEngine::update_socket(SocketId socket, SocketConfig config) {
  auto it = sockets_.find(socket);
  if (it == sockets_.end() || it->second.removed) return false;
  apply_trigger_limit(it->second.trigger_limit, config);
  it->second.config = std::move(config);
  return true;
}

bool AdmissionEngine::remove_socket(SocketId socket) {
  auto it = sockets_.find(socket);
  if (it == sockets_.end() || it->second.removed) return false;
  it->second.removed = true;
  forget_socket_if_drained(it);
  return true;
}

void AdmissionEngine::forget_socket_if_drained(
    std::unordered_map<SocketId, SocketState>::iterator it) {
  // A removed socket's state lives on while instances or parked connections refer to it.
  const SocketState& socket = it->second;
  if (socket.removed && socket.stats.instances == 0 && socket.stats.parked == 0) {
    sockets_.erase(it);
  }
}

bool AdmissionEngine::has_socket(SocketId socket) const {
  auto it = sockets_.find(socket);
  return it != sockets_.end() && !it->second.removed;
}

bool AdmissionEngine::is_exempt(const IpAddress& peer) const {
  return any_contains(config_.exempt_sources, peer);
}

bool AdmissionEngine::should_drop_early(const MaxStartups& limits, unsigned n,
                                        RandomSource& random) const {
  const unsigned p = limits.drop_probability_percent(n);
  if (p == 0) return false;
  if (p >= 100) return true;
  return random.uniform(100) < p;
}

namespace {

// count >= limit + reserve without unsigned wrap-around: MaxConnections=4294967295 plus the
// admins' ReservedStartups= would wrap to a tiny limit and refuse exactly the exempt sources.
bool at_or_over(std::uint64_t count, std::uint64_t limit, std::uint64_t reserve) {
  return count >= limit + reserve;
}

}  // namespace

Decision AdmissionEngine::admit(SocketId id, const IpAddress& raw_peer, TimePoint now,
                                RandomSource& random, bool ip_peer) {
  auto socket_it = sockets_.find(id);
  if (socket_it == sockets_.end() || socket_it->second.removed) {
    throw std::out_of_range("admission: unknown socket id");
  }
  SocketState& socket = socket_it->second;
  const SocketConfig& cfg = socket.config;
  const IpAddress peer = raw_peer.unmapped();
  const bool exempt = is_exempt(peer);
  const unsigned reserve = exempt ? config_.reserved_startups : 0;

  Decision decision;
  decision.startups = startups_;
  decision.socket_startups = socket.stats.startups;
  decision.parked = static_cast<unsigned>(room_.size());
  decision.exempt = exempt;
  ++socket.stats.accepted;
  auto drop = [&](DropReason reason) {
    ++socket.stats.dropped[static_cast<std::size_t>(reason)];
    decision.reason = reason;
    return decision;
  };

  if (ip_peer && !any_contains(cfg.ip_address_allow, peer) &&
      any_contains(cfg.ip_address_deny, peer)) {
    return drop(DropReason::acl);
  }
  if (!exempt) {
    if (penalties_.is_refused(peer, now)) return drop(DropReason::penalty);
    if (!socket.trigger_limit.try_take(now)) return drop(DropReason::rate);
  }
  // With the waiting room, a connection the startup budget has no room for waits for a slot
  // instead of being refused (exempt sources never wait: they have their reserve, and past
  // it they are refused as ever).
  const bool may_park = config_.waiting_room.enabled && !exempt;
  const bool over_source_connections =
      !exempt && cfg.max_connections_per_source > 0 &&
      socket.instances_by_address.count(peer) >= cfg.max_connections_per_source;
  if (at_or_over(socket.stats.instances, cfg.max_connections, reserve)) {
    // Full of instances of which some are still starting: one of them ends (or is reclaimed
    // as stalled) soon, so the connection waits for it like one the budget has no room for.
    // Full of sessions, a slot may not free for hours: refused at once, as before.
    if (may_park && socket.stats.startups > 0 && !over_source_connections)
      return park(id, socket, peer, decision, now, random);
    return drop(DropReason::max_connections);
  }
  const IpAddress block = mask_to_block(peer, config_.net_block_size);
  if (over_source_connections) return drop(DropReason::per_source_connections);
  // From here on the rules are the startup budget's.
  if (!exempt) {
    const auto per_source =
        cfg.per_source_max_startups ? cfg.per_source_max_startups : config_.per_source_max_startups;
    if (per_source && block_startups_.count(block) >= *per_source) {
      if (may_park) return park(id, socket, peer, decision, now, random);
      return drop(DropReason::per_source_startups);
    }
  }
  if (at_or_over(startups_, config_.max_startups.full, reserve) ||
      (cfg.max_startups && at_or_over(socket.stats.startups, cfg.max_startups->full, reserve))) {
    if (may_park) return park(id, socket, peer, decision, now, random);
    return drop(DropReason::startups_full);
  }
  // The room replaces random early drop on the startups: below full a connection starts.
  if (!exempt && !may_park) {
    if (should_drop_early(config_.max_startups, startups_, random) ||
        (cfg.max_startups && should_drop_early(*cfg.max_startups, socket.stats.startups, random))) {
      return drop(DropReason::startups_early_drop);
    }
  }

  ++socket.stats.admitted;
  decision.instance = track(id, socket, peer, exempt, false, now);
  return decision;
}

InstanceId AdmissionEngine::track(SocketId id, SocketState& socket, const IpAddress& peer,
                                  bool exempt, bool ready, TimePoint now) {
  const InstanceId instance{next_instance_++};
  InstanceInfo info;
  info.socket = id;
  info.peer = peer;
  info.block = mask_to_block(peer, config_.net_block_size);
  info.exempt = exempt;
  info.ready = ready;
  info.admitted_at = now;
  if (ready) info.ready_at = now;
  ++socket.stats.instances;
  socket.instances_by_address.add(peer);
  if (!ready) {
    ++socket.stats.startups;
    ++startups_;
    if (startups_ > peak_startups_) peak_startups_ = startups_;
    block_startups_.add(info.block);
  }
  instances_.emplace(instance, std::move(info));
  return instance;
}

bool AdmissionEngine::mark_ready(InstanceId instance, TimePoint now) {
  auto it = instances_.find(instance);
  if (it == instances_.end() || it->second.ready) return false;
  InstanceInfo& info = it->second;
  info.ready = true;
  info.ready_at = now;
  --sockets_.at(info.socket).stats.startups;
  --startups_;
  block_startups_.remove(info.block);
  return true;
}

void AdmissionEngine::forget(std::unordered_map<InstanceId, InstanceInfo>::iterator it) {
  const InstanceInfo& info = it->second;
  auto socket_it = sockets_.find(info.socket);
  SocketState& socket = socket_it->second;
  if (!info.ready) {
    --socket.stats.startups;
    --startups_;
    block_startups_.remove(info.block);
  }
  --socket.stats.instances;
  socket.instances_by_address.remove(info.peer);
  instances_.erase(it);
  forget_socket_if_drained(socket_it);
}

bool AdmissionEngine::spawn_failed(InstanceId instance) {
  auto it = instances_.find(instance);
  if (it == instances_.end()) return false;
  ++sockets_.at(it->second.socket)
        .stats.dropped[static_cast<std::size_t>(DropReason::spawn_failed)];
  forget(it);
  return true;
}

Released AdmissionEngine::release(InstanceId instance, const InstanceEnd& end,
                                  ExitStatusOutcomes table, TimePoint now) {
  Released released;
  auto it = instances_.find(instance);
  if (it == instances_.end()) return released;
  released.found = true;
  released.was_ready = it->second.ready;
  const IpAddress peer = it->second.peer;
  const bool exempt = it->second.exempt;
  forget(it);
  // Like sshd's listener, which forgets a child once it reports "auth done": only an end
  // before readiness says anything about the source.
  if (released.was_ready || exempt) return released;
  released.penalty = penalty_for(end, table);
  if (released.penalty) released.record = penalties_.penalise(peer, *released.penalty, now);
  return released;
}

Released AdmissionEngine::release(InstanceId instance, Outcome outcome, TimePoint now) {
  switch (outcome) {
    case Outcome::startup_timeout:
      return release(instance, InstanceEnd::startup_timeout(), ExitStatusOutcomes::legacy, now);
    case Outcome::killed_by_signal:
      return release(instance, InstanceEnd::killed(0), ExitStatusOutcomes::legacy, now);
    case Outcome::exited:
      break;
  }
  return release(instance, InstanceEnd::exited(0), ExitStatusOutcomes::legacy, now);
}

std::optional<InstanceId> AdmissionEngine::adopt(SocketId id, const IpAddress& peer, bool ready,
                                                 TimePoint now) {
  auto it = sockets_.find(id);
  if (it == sockets_.end() || it->second.removed) return std::nullopt;
  const IpAddress unmapped = peer.unmapped();
  return track(id, it->second, unmapped, is_exempt(unmapped), ready, now);
}

Decision AdmissionEngine::refuse_closed(SocketId id, const IpAddress& raw_peer, TimePoint now,
                                        bool ip_peer) {
  Decision decision;
  decision.startups = startups_;
  decision.parked = static_cast<unsigned>(room_.size());
  decision.reason = DropReason::peer_closed;
  auto socket_it = sockets_.find(id);
  if (socket_it == sockets_.end()) return decision;
  SocketState& socket = socket_it->second;
  decision.socket_startups = socket.stats.startups;
  ++socket.stats.accepted;
  const IpAddress peer = raw_peer.unmapped();
  decision.exempt = is_exempt(peer);
  // The rules before any limit still name the reason first: a denied or penalised source
  // is refused as such, gone or not.
  if (ip_peer && !any_contains(socket.config.ip_address_allow, peer) &&
      any_contains(socket.config.ip_address_deny, peer)) {
    decision.reason = DropReason::acl;
  } else if (!decision.exempt && penalties_.is_refused(peer, now)) {
    decision.reason = DropReason::penalty;
  } else if (ip_peer && !decision.exempt) {
    (void)penalties_.penalise(peer, PenaltyKind::noauth, now);
  }
  ++socket.stats.dropped[static_cast<std::size_t>(*decision.reason)];
  return decision;
}

PenaltyRecord AdmissionEngine::penalise(const IpAddress& peer, PenaltyKind kind, TimePoint now) {
  const IpAddress unmapped = peer.unmapped();
  if (is_exempt(unmapped)) return PenaltyRecord::ignored;
  return penalties_.penalise(unmapped, kind, now);
}

StartupsStats AdmissionEngine::startups() const {
  return StartupsStats{startups_, peak_startups_, config_.max_startups};
}

std::optional<SocketStats> AdmissionEngine::socket_stats(SocketId socket) const {
  auto it = sockets_.find(socket);
  if (it == sockets_.end()) return std::nullopt;
  return it->second.stats;
}

std::optional<InstanceInfo> AdmissionEngine::instance(InstanceId instance) const {
  auto it = instances_.find(instance);
  if (it == instances_.end()) return std::nullopt;
  return it->second;
}

std::vector<PenalisedSource> AdmissionEngine::penalised_sources(TimePoint now) const {
  return penalties_.active_penalties(now);
}

}  // namespace usherd::policy

// The waiting-room side of AdmissionEngine: parking a connection the startup budget has no
// room for, starting parked connections as slots free, and their timeouts, hang-ups and
// push-outs. Kept apart from admission.cpp, whose rules decide what is parked, so that each
// file stays one job: the rules there, the room's bookkeeping here.
#include <algorithm>

#include "policy/admission.h"

namespace usherd::policy {

namespace {

// MaxParkedWait= is bounded by its parser; this keeps now + wait far from overflowing
// TimePoint whatever a caller configures.
constexpr std::chrono::microseconds kLongestWait = std::chrono::hours(24);

std::chrono::microseconds waited_since(TimePoint since, TimePoint now) {
  return std::chrono::duration_cast<std::chrono::microseconds>(now - since);
}

}  // namespace

Cidr AdmissionEngine::block_of(const IpAddress& peer) const {
  const NetBlockSize& size = config_.net_block_size;
  return Cidr(peer, peer.is_v4() ? size.v4 : size.v6);
}

Decision AdmissionEngine::park(SocketId id, SocketState& socket, const IpAddress& peer,
                               Decision decision, TimePoint now, RandomSource& random) {
  const WaitingRoomConfig& room = config_.waiting_room;
  auto drop = [&](DropReason reason) {
    ++socket.stats.dropped[static_cast<std::size_t>(reason)];
    decision.reason = reason;
    return decision;
  };
  const Cidr block = block_of(peer);
  const std::size_t mine = room_.parked_in(block);
  if (room.per_source_max_parked && mine >= *room.per_source_max_parked) {
    return drop(DropReason::queue_full);
  }
  const auto parked = static_cast<unsigned>(room_.size());
  if (parked >= room.max_parked.full) {
    // Longest-queue drop: the newest connection of the largest block makes room, but only
    // for a block that stays no larger than that one after the swap, so two blocks never
    // push each other out in turn, and equal blocks (a many-source flood) push no one.
    const auto victim_id = room_.newest_of_largest_block();
    const Ticket* victim = victim_id ? room_.find(*victim_id) : nullptr;
    if (victim == nullptr || room_.parked_in(victim->block) <= mine + 1) {
      return drop(DropReason::queue_full);
    }
    const Ticket pushed = *room_.remove(*victim_id);
    decision.pushed_out = leave(pushed, DropReason::queue_full, now);
  } else if (should_drop_early(room.max_parked, parked, random)) {
    return drop(DropReason::queue_early_drop);
  }
  Ticket ticket;
  ticket.id = TicketId{next_ticket_++};
  ticket.socket = id;
  ticket.peer = peer;
  ticket.block = block;
  ticket.parked_at = now;
  ticket.deadline = now + std::clamp(room.max_wait, std::chrono::microseconds(0), kLongestWait);
  decision.ticket = ticket.id;
  room_.park(std::move(ticket));
  ++socket.stats.parked;
  ++socket.stats.parked_total;
  peak_parked_ = std::max(peak_parked_, static_cast<unsigned>(room_.size()));
  return decision;
}

bool AdmissionEngine::fits(const SocketState& socket, const IpAddress& peer) const {
  // The rules of admit() that bound instances and startups, for a parked (never exempt)
  // connection: whatever filled up while it waited holds it back.
  const SocketConfig& cfg = socket.config;
  if (socket.stats.instances >= cfg.max_connections) return false;
  if (cfg.max_connections_per_source > 0 &&
      socket.instances_by_address.count(peer) >= cfg.max_connections_per_source) {
    return false;
  }
  const auto per_source =
      cfg.per_source_max_startups ? cfg.per_source_max_startups : config_.per_source_max_startups;
  if (per_source &&
      block_startups_.count(mask_to_block(peer, config_.net_block_size)) >= *per_source) {
    return false;
  }
  if (startups_ >= config_.max_startups.full) return false;
  return !cfg.max_startups || socket.stats.startups < cfg.max_startups->full;
}

Turn AdmissionEngine::judge(const Ticket& ticket, TimePoint now) {
  // A block penalised while its connections waited never enters.
  if (penalties_.is_refused(ticket.peer, now)) return Turn::drop;
  return fits(sockets_.at(ticket.socket), ticket.peer) ? Turn::start : Turn::wait;
}

RoomExit AdmissionEngine::leave(const Ticket& ticket, DropReason reason, TimePoint now) {
  RoomExit exit;
  exit.ticket = ticket.id;
  exit.socket = ticket.socket;
  exit.peer = ticket.peer;
  exit.reason = reason;
  exit.waited = waited_since(ticket.parked_at, now);
  exit.startups = startups_;
  auto it = sockets_.find(ticket.socket);
  --it->second.stats.parked;
  ++it->second.stats.dropped[static_cast<std::size_t>(reason)];
  forget_socket_if_drained(it);
  return exit;
}

std::vector<RoomExit> AdmissionEngine::next_from_room(TimePoint now) {
  std::vector<RoomExit> out = expire(now);
  // Nobody parked is exempt, so at full nothing can start: under a flood a freed slot costs
  // one turn and then this one comparison.
  while (!room_.empty() && startups_ < config_.max_startups.full) {
    auto turn = room_.take_turn([&](const Ticket& ticket) { return judge(ticket, now); });
    if (!turn) break;
    const Ticket& ticket = turn->first;
    if (turn->second == Turn::drop) {
      out.push_back(leave(ticket, DropReason::penalty, now));
      continue;
    }
    RoomExit exit;
    exit.ticket = ticket.id;
    exit.socket = ticket.socket;
    exit.peer = ticket.peer;
    exit.waited = waited_since(ticket.parked_at, now);
    exit.startups = startups_;
    SocketState& socket = sockets_.at(ticket.socket);
    --socket.stats.parked;
    ++socket.stats.admitted;
    exit.instance = track(ticket.socket, socket, ticket.peer, false, false, now);
    ++room_started_;
    room_waited_total_ += exit.waited;
    room_waited_max_ = std::max(room_waited_max_, exit.waited);
    out.push_back(std::move(exit));
  }
  return out;
}

std::vector<RoomExit> AdmissionEngine::expire(TimePoint now) {
  std::vector<RoomExit> out;
  while (const auto due = room_.first_due(now)) {
    const Ticket ticket = *room_.remove(*due);
    out.push_back(leave(ticket, DropReason::queue_timeout, now));
  }
  return out;
}

bool AdmissionEngine::cancel(TicketId id) {
  const auto ticket = room_.remove(id);
  if (!ticket) return false;
  auto it = sockets_.find(ticket->socket);
  --it->second.stats.parked;
  ++it->second.stats.abandoned;
  forget_socket_if_drained(it);
  return true;
}

RoomStats AdmissionEngine::room_stats() const {
  RoomStats stats;
  const WaitingRoomConfig& room = config_.waiting_room;
  stats.enabled = room.enabled;
  stats.parked = static_cast<unsigned>(room_.size());
  stats.peak = peak_parked_;
  stats.blocks = room_.block_count();
  stats.started = room_started_;
  stats.waited_total = room_waited_total_;
  stats.waited_max = room_waited_max_;
  stats.configured = room.max_parked;
  stats.per_source = room.per_source_max_parked;
  stats.max_wait = room.max_wait;
  return stats;
}

}  // namespace usherd::policy

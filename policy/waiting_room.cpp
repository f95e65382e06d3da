// The queues, ring and indexes of WaitingRoom.
#include "policy/waiting_room.h"

#include <algorithm>
#include <iterator>

namespace usherd::policy {

void WaitingRoom::resize(const Cidr& block, std::size_t before, std::size_t after) {
  if (before > 0) by_size_.erase({before, block});
  if (after > 0) by_size_.insert({after, block});
}

void WaitingRoom::forget_if_empty(std::map<Cidr, Block>::iterator it) {
  if (!it->second.tickets.empty()) return;
  ring_.erase(it->second.in_ring);
  blocks_.erase(it);
}

void WaitingRoom::park(Ticket ticket) {
  auto it = blocks_.find(ticket.block);
  if (it == blocks_.end()) {
    it = blocks_.emplace(ticket.block, Block{}).first;
    it->second.in_ring = ring_.insert(ring_.end(), ticket.block);
  }
  const std::size_t before = it->second.tickets.size();
  it->second.tickets.push_back(ticket.id);
  resize(ticket.block, before, before + 1);
  deadlines_.insert({ticket.deadline, ticket.id});
  tickets_.emplace(ticket.id, std::move(ticket));
}

std::optional<Ticket> WaitingRoom::remove(TicketId id) {
  auto found = tickets_.find(id);
  if (found == tickets_.end()) return std::nullopt;
  Ticket ticket = std::move(found->second);
  tickets_.erase(found);
  deadlines_.erase({ticket.deadline, id});
  auto it = blocks_.find(ticket.block);
  auto& queue = it->second.tickets;
  const std::size_t before = queue.size();
  // A block holds at most PerSourceMaxParked= tickets, and the one leaving is usually the
  // oldest (a start) or the newest (a push-out): a linear search is short.
  queue.erase(std::find(queue.begin(), queue.end(), id));
  resize(ticket.block, before, before - 1);
  forget_if_empty(it);
  return ticket;
}

const Ticket* WaitingRoom::find(TicketId id) const {
  auto it = tickets_.find(id);
  return it == tickets_.end() ? nullptr : &it->second;
}

std::optional<std::pair<Ticket, Turn>> WaitingRoom::take_turn(
    const std::function<Turn(const Ticket&)>& judge) {
  for (auto ring_it = ring_.begin(); ring_it != ring_.end(); ++ring_it) {
    const Block& block = blocks_.at(*ring_it);
    for (TicketId id : block.tickets) {
      const Turn verdict = judge(tickets_.at(id));
      if (verdict == Turn::wait) continue;
      if (verdict == Turn::start && std::next(ring_it) != ring_.end()) {
        // The served block goes to the back; blocks passed over keep their places.
        ring_.splice(ring_.end(), ring_, ring_it);
      }
      auto ticket = remove(id);
      return std::make_pair(std::move(*ticket), verdict);
    }
  }
  return std::nullopt;
}

std::optional<TicketId> WaitingRoom::first_due(TimePoint now) const {
  if (deadlines_.empty() || deadlines_.begin()->first > now) return std::nullopt;
  return deadlines_.begin()->second;
}

std::optional<TimePoint> WaitingRoom::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

std::optional<TicketId> WaitingRoom::newest_of_largest_block() const {
  if (by_size_.empty()) return std::nullopt;
  return blocks_.at(by_size_.rbegin()->second).tickets.back();
}

std::size_t WaitingRoom::parked_in(const Cidr& block) const {
  auto it = blocks_.find(block);
  return it == blocks_.end() ? 0 : it->second.tickets.size();
}

std::vector<ParkedBlock> WaitingRoom::blocks() const {
  std::vector<ParkedBlock> out;
  out.reserve(blocks_.size());
  for (const auto& [block, state] : blocks_) out.push_back({block, state.tickets.size()});
  std::stable_sort(out.begin(), out.end(),
                   [](const ParkedBlock& a, const ParkedBlock& b) { return a.parked > b.parked; });
  return out;
}

}  // namespace usherd::policy

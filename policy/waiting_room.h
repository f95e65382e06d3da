// WaitingRoom: connections that were accepted while the startup budget had no room for them,
// waiting for a slot, and the order in which they get one.
//
// Turns go to source blocks, not to connections: the blocks with parked connections form a
// ring, and each turn goes to the first block in the ring that has a connection able to start
// (oldest first within a block); that block then goes to the back of the ring. This is
// deficit round robin (Shreedhar and Varghese, 1995) with a quantum of one startup, every
// startup costing one, which is plain round robin over blocks: a block with 100 parked
// connections gets no more turns than a block with one, and a block that joins waits at most
// one turn of each block already there. A block passed over because none of its connections
// can start (its own PerSourceMaxStartups=, its socket's X-MaxStartups=) keeps its place, so
// it gets the first slot it can use.
//
// When the room is full, the newest connection of the largest block can be pushed out to
// make room for a connection of a smaller block (longest-queue drop, the buffer rule that
// goes with fair queueing): filling the room from a few blocks does not lock the others out.
//
// The room only keeps order and bounds; what may start, and what the bounds are, is the
// admission engine's call. Invariants: every ticket is in exactly one block's queue and in
// the deadline index; a block is in the ring and in the size index iff it has tickets. No
// clock, no I/O: deadlines are set by the caller and compared with the now it passes.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/address.h"
#include "policy/ids.h"
#include "policy/time_point.h"

namespace usherd::policy {

/// A parked connection.
struct Ticket {
  TicketId id{};        ///< Its id.
  SocketId socket{};    ///< The socket it was accepted on.
  IpAddress peer;       ///< The (unmapped) peer address.
  Cidr block;           ///< The peer's source block when it was parked.
  TimePoint parked_at;  ///< When it was parked.
  TimePoint deadline;   ///< When it stops waiting (queue-timeout).
};

/// The owner's verdict on a ticket whose block has the turn.
enum class Turn {
  start,  ///< It may start now: it leaves the room and its block goes to the back.
  wait,   ///< It cannot start yet; the next ticket (of this block, then of the next) is asked.
  drop,   ///< It must leave without starting (e.g. its block is now penalised).
};

/// A block and how many of its connections are parked.
struct ParkedBlock {
  Cidr block;              ///< The source block.
  std::size_t parked = 0;  ///< Its parked connections.
};

/// Parked connections, queued per source block and served round robin between blocks.
class WaitingRoom {
 public:
  /// Parks ticket at the back of its block's queue (a new block joins the back of the ring).
  /// Precondition: ticket.id is not parked.
  void park(Ticket ticket);
  /// Takes a ticket out wherever it is; nullopt if it is not parked.
  std::optional<Ticket> remove(TicketId id);
  /// The parked ticket id, or nullptr.
  const Ticket* find(TicketId id) const;

  /// Gives the next turn: asks judge about the tickets of the first block in the ring, oldest
  /// first, then of the next block, and so on. The first ticket judged start or drop leaves
  /// the room and is returned with its verdict; a start sends its block to the back of the
  /// ring. nullopt when every ticket waits (or the room is empty).
  std::optional<std::pair<Ticket, Turn>> take_turn(const std::function<Turn(const Ticket&)>& judge);

  /// The ticket with the earliest deadline, if that deadline is at or before now.
  std::optional<TicketId> first_due(TimePoint now) const;
  /// The earliest deadline, for the caller's timer; nullopt when empty.
  std::optional<TimePoint> next_deadline() const;
  /// The newest ticket of the block with the most parked (ties: the greatest block).
  std::optional<TicketId> newest_of_largest_block() const;

  /// Parked connections.
  std::size_t size() const { return tickets_.size(); }
  /// True when nothing is parked.
  bool empty() const { return tickets_.empty(); }
  /// Parked connections of block.
  std::size_t parked_in(const Cidr& block) const;
  /// Blocks with parked connections.
  std::size_t block_count() const { return blocks_.size(); }
  /// Blocks with parked connections, most parked first (ties: by block).
  std::vector<ParkedBlock> blocks() const;

 private:
  struct Block {
    std::deque<TicketId> tickets;  // oldest first
    std::list<Cidr>::iterator in_ring;
  };

  void resize(const Cidr& block, std::size_t before, std::size_t after);
  void forget_if_empty(std::map<Cidr, Block>::iterator it);

  std::unordered_map<TicketId, Ticket> tickets_;
  std::map<Cidr, Block> blocks_;
  std::list<Cidr> ring_;  // front has the next turn
  std::set<std::pair<TimePoint, TicketId>> deadlines_;
  std::set<std::pair<std::size_t, Cidr>> by_size_;
};

}  // namespace usherd::policy

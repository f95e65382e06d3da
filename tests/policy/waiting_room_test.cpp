// Tests for policy/waiting_room: round robin between blocks, places kept by blocks passed
// over, removal from anywhere, deadlines, and the push-out candidate.
#include "policy/waiting_room.h"

#include "tests/catch.h"

#include <algorithm>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using usherd::policy::Cidr;
using usherd::policy::IpAddress;
using usherd::policy::SocketId;
using usherd::policy::Ticket;
using usherd::policy::TicketId;
using usherd::policy::TimePoint;
using usherd::policy::Turn;
using usherd::policy::WaitingRoom;

namespace {

const TimePoint t0 = TimePoint() + 100000s;

Cidr block(const std::string& text) {
  auto parsed = Cidr::parse(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

// Parks ticket id from block at t0 + id ms, deadline 8 s later.
void park(WaitingRoom& room, std::uint64_t id, const std::string& block_text) {
  Ticket ticket;
  ticket.id = TicketId{id};
  ticket.socket = SocketId{1};
  ticket.block = block(block_text);
  ticket.peer = ticket.block.address();
  ticket.parked_at = t0 + std::chrono::milliseconds(id);
  ticket.deadline = ticket.parked_at + 8s;
  room.park(ticket);
}

// Starts tickets until the room is empty; returns their ids in order.
std::vector<std::uint64_t> serve_all(WaitingRoom& room) {
  std::vector<std::uint64_t> order;
  while (auto turn = room.take_turn([](const Ticket&) { return Turn::start; })) {
    order.push_back(static_cast<std::uint64_t>(turn->first.id));
  }
  return order;
}

}  // namespace

TEST_CASE("a lone block's connection goes within two turns of a block with many",
          "[policy][room]") {
  auto crowd = GENERATE(1u, 2u, 10u, 100u);
  WaitingRoom room;
  for (unsigned i = 1; i <= crowd; ++i) park(room, i, "198.51.100.0/24");
  park(room, 1000, "203.0.113.7/32");
  const auto order = serve_all(room);
  REQUIRE(order.size() == crowd + 1);
  const auto lone = std::find(order.begin(), order.end(), 1000u) - order.begin();
  CHECK(lone <= 1);
  CHECK(room.empty());
  CHECK(room.block_count() == 0);
}

TEST_CASE("blocks take turns in the order they arrived, each oldest first", "[policy][room]") {
  WaitingRoom room;
  park(room, 1, "192.0.2.1/32");
  park(room, 2, "192.0.2.1/32");
  park(room, 3, "192.0.2.1/32");
  park(room, 4, "192.0.2.2/32");
  park(room, 5, "192.0.2.3/32");
  park(room, 6, "192.0.2.3/32");
  CHECK(serve_all(room) == std::vector<std::uint64_t>{1, 4, 5, 2, 6, 3});
}

TEST_CASE("a block none of whose connections can start keeps its place", "[policy][room]") {
  WaitingRoom room;
  park(room, 1, "192.0.2.1/32");  // blocked for now
  park(room, 2, "192.0.2.2/32");
  park(room, 3, "192.0.2.2/32");
  park(room, 4, "192.0.2.3/32");
  bool blocked = true;
  auto judge = [&](const Ticket& t) {
    return blocked && t.id == TicketId{1} ? Turn::wait : Turn::start;
  };
  CHECK(room.take_turn(judge)->first.id == TicketId{2});
  CHECK(room.take_turn(judge)->first.id == TicketId{4});
  blocked = false;
  // The first block is still at the front: it gets the first slot it can use.
  CHECK(room.take_turn(judge)->first.id == TicketId{1});
  CHECK(room.take_turn(judge)->first.id == TicketId{3});
  CHECK_FALSE(room.take_turn(judge));
}

TEST_CASE("a later ticket of a block starts when its oldest cannot", "[policy][room]") {
  WaitingRoom room;
  park(room, 1, "192.0.2.1/32");
  park(room, 2, "192.0.2.1/32");
  auto turn = room.take_turn(
      [](const Ticket& t) { return t.id == TicketId{1} ? Turn::wait : Turn::start; });
  REQUIRE(turn);
  CHECK(turn->first.id == TicketId{2});
  CHECK(room.size() == 1);
  CHECK_FALSE(room.take_turn([](const Ticket&) { return Turn::wait; }));
}

TEST_CASE("a dropped ticket leaves without costing its block its place", "[policy][room]") {
  WaitingRoom room;
  park(room, 1, "192.0.2.1/32");
  park(room, 2, "192.0.2.1/32");
  park(room, 3, "192.0.2.2/32");
  auto turn = room.take_turn(
      [](const Ticket& t) { return t.id == TicketId{1} ? Turn::drop : Turn::start; });
  REQUIRE(turn);
  CHECK(turn->first.id == TicketId{1});
  CHECK(turn->second == Turn::drop);
  CHECK(serve_all(room) == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("removing a ticket from anywhere keeps the rest in order", "[policy][room]") {
  WaitingRoom room;
  park(room, 1, "192.0.2.1/32");
  park(room, 2, "192.0.2.1/32");
  park(room, 3, "192.0.2.1/32");
  park(room, 4, "192.0.2.2/32");
  REQUIRE(room.remove(TicketId{2}));
  CHECK_FALSE(room.remove(TicketId{2}));
  REQUIRE(room.remove(TicketId{4}));
  CHECK(room.block_count() == 1);
  CHECK(room.find(TicketId{4}) == nullptr);
  CHECK(room.find(TicketId{3}) != nullptr);
  CHECK(serve_all(room) == std::vector<std::uint64_t>{1, 3});
}

TEST_CASE("the earliest deadline is due at it and not before", "[policy][room]") {
  WaitingRoom room;
  CHECK_FALSE(room.next_deadline());
  park(room, 5, "192.0.2.1/32");
  park(room, 2, "192.0.2.2/32");
  REQUIRE(room.next_deadline());
  CHECK(*room.next_deadline() == t0 + 2ms + 8s);
  CHECK_FALSE(room.first_due(t0 + 2ms + 8s - 1us));
  CHECK(room.first_due(t0 + 2ms + 8s) == TicketId{2});
  room.remove(TicketId{2});
  CHECK(room.first_due(t0 + 1h) == TicketId{5});
}

TEST_CASE("the push-out candidate is the newest of the largest block", "[policy][room]") {
  WaitingRoom room;
  CHECK_FALSE(room.newest_of_largest_block());
  park(room, 1, "192.0.2.1/32");
  park(room, 2, "192.0.2.2/32");
  park(room, 3, "192.0.2.2/32");
  park(room, 4, "192.0.2.3/32");
  CHECK(room.newest_of_largest_block() == TicketId{3});
  CHECK(room.parked_in(block("192.0.2.2/32")) == 2);
  CHECK(room.parked_in(block("192.0.2.9/32")) == 0);
  const auto blocks = room.blocks();
  REQUIRE(blocks.size() == 3);
  CHECK(blocks[0].block == block("192.0.2.2/32"));
  CHECK(blocks[0].parked == 2);
  CHECK(blocks[1].parked == 1);
}

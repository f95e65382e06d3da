// Tests for the waiting room of policy/admission: what is parked instead of dropped, who gets
// a freed slot (round robin between blocks), exempt and penalised sources, every bound
// (PerSourceMaxParked=, MaxParked= with push-out and its early drop, MaxParkedWait=), hang-ups,
// and the interplay with X-MaxStartups=, PerSourceMaxStartups= and MaxConnections=.
#include "tests/catch.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "policy/admission.h"
#include "random_sources.h"

using namespace std::chrono_literals;
using usherd::policy::AdmissionEngine;
using usherd::policy::Decision;
using usherd::policy::DropReason;
using usherd::policy::GlobalConfig;
using usherd::policy::InstanceId;
using usherd::policy::IpAddress;
using usherd::policy::MaxStartups;
using usherd::policy::Outcome;
using usherd::policy::PenaltyKind;
using usherd::policy::RoomExit;
using usherd::policy::SocketConfig;
using usherd::policy::SocketId;
using usherd::policy::TicketId;
using usherd::policy::TimePoint;
using usherd::policy::testing::ScriptedRandom;
using usherd::policy::testing::SeededRandom;

namespace {

const TimePoint t0 = TimePoint() + 100000s;

IpAddress ip(const std::string& text) {
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

// A room in front of MaxStartups=full (a hard cap), with generous bounds unless a test
// narrows them.
GlobalConfig room_config(unsigned full) {
  GlobalConfig global;
  global.max_startups = MaxStartups{full, 30, full};
  global.waiting_room.enabled = true;
  global.waiting_room.max_parked = MaxStartups{1000, 30, 1000};
  global.waiting_room.per_source_max_parked.reset();
  global.waiting_room.max_wait = 8s;
  return global;
}

SocketConfig roomy_socket() {
  SocketConfig socket;
  socket.max_connections = 10000;
  return socket;
}

std::string outcome_of(const Decision& d) {
  if (d.admitted()) return "admitted";
  if (d.is_parked()) return "parked";
  return std::string(to_string(*d.reason));
}

// Admits (REQUIREs) one connection from peer; its instance.
InstanceId admit_one(AdmissionEngine& engine, SocketId socket, const std::string& peer,
                     TimePoint now = t0) {
  ScriptedRandom never{};
  auto d = engine.admit(socket, ip(peer), now, never);
  REQUIRE(d.admitted());
  return *d.instance;
}

// Parks (REQUIREs) one connection from peer; its ticket.
TicketId park_one(AdmissionEngine& engine, SocketId socket, const std::string& peer,
                  TimePoint now = t0) {
  ScriptedRandom never{};
  auto d = engine.admit(socket, ip(peer), now, never);
  REQUIRE(d.is_parked());
  CHECK_FALSE(d.reason);
  CHECK(never.draws == 0);
  return *d.ticket;
}

std::vector<std::string> started_peers(const std::vector<RoomExit>& exits) {
  std::vector<std::string> out;
  for (const auto& e : exits)
    if (e.started()) out.push_back(e.peer.to_string());
  return out;
}

}  // namespace

TEST_CASE("without the room the budget's drops are today's", "[policy][admission][room]") {
  GlobalConfig global = room_config(1);
  global.waiting_room.enabled = false;
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.1");
  ScriptedRandom never{};
  CHECK(outcome_of(engine.admit(socket, ip("192.0.2.2"), t0, never)) == "startups-full");
  CHECK(engine.room_stats().parked == 0);
  CHECK_FALSE(engine.room_stats().enabled);
}

TEST_CASE("a connection the startup budget has no room for is parked, not dropped",
          "[policy][admission][room]") {
  AdmissionEngine engine(room_config(2));
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.1");
  admit_one(engine, socket, "192.0.2.2");
  ScriptedRandom never{};
  const auto d = engine.admit(socket, ip("192.0.2.3"), t0, never);
  REQUIRE(d.is_parked());
  CHECK_FALSE(d.admitted());
  CHECK_FALSE(d.reason);
  CHECK(d.startups == 2);
  CHECK(d.parked == 0);
  CHECK(engine.startups().current == 2);
  CHECK(engine.instance_count() == 2);
  const auto stats = *engine.socket_stats(socket);
  CHECK(stats.parked == 1);
  CHECK(stats.parked_total == 1);
  CHECK(stats.dropped_total() == 0);
  CHECK(engine.room_stats().parked == 1);
  CHECK(engine.room_stats().blocks == 1);
  REQUIRE(engine.parked(*d.ticket));
  CHECK(engine.parked(*d.ticket)->peer == ip("192.0.2.3"));
  CHECK(engine.next_room_deadline() == t0 + 8s);
  // Nothing freed: nothing starts.
  CHECK(engine.next_from_room(t0 + 1s).empty());
}

TEST_CASE("with the room, MaxStartups' early drop makes no draw below full",
          "[policy][admission][room]") {
  GlobalConfig global = room_config(4);
  global.max_startups = MaxStartups{2, 30, 4};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  ScriptedRandom never{};
  for (unsigned i = 1; i <= 4; ++i) {
    CHECK(outcome_of(engine.admit(socket, ip("192.0.2." + std::to_string(i)), t0, never)) ==
          "admitted");
  }
  CHECK(outcome_of(engine.admit(socket, ip("192.0.2.9"), t0, never)) == "parked");
  CHECK(never.draws == 0);
  CHECK(engine.startups().peak == 4);
}

TEST_CASE("a slot freed by ready, end or a failed spawn starts the parked connection",
          "[policy][admission][room]") {
  auto how = GENERATE(as<std::string>{}, "ready", "ended", "ended-before-ready", "spawn-failed");
  AdmissionEngine engine(room_config(1));
  const auto socket = engine.add_socket(roomy_socket());
  const auto first = admit_one(engine, socket, "192.0.2.1");
  const auto ticket = park_one(engine, socket, "192.0.2.2");
  const TimePoint later = t0 + 1500ms;
  if (how == "ready") {
    REQUIRE(engine.mark_ready(first, later));
  } else if (how == "ended") {
    engine.mark_ready(first, t0 + 1s);
    CHECK(engine.next_from_room(t0 + 1s).size() == 1);  // the slot freed at ready already
    REQUIRE(engine.release(first, Outcome::exited, later).found);
    CHECK(engine.next_from_room(later).empty());
    return;
  } else if (how == "ended-before-ready") {
    REQUIRE(engine.release(first, Outcome::exited, later).found);
  } else {
    REQUIRE(engine.spawn_failed(first));
  }
  const auto exits = engine.next_from_room(later);
  REQUIRE(exits.size() == 1);
  const RoomExit& e = exits[0];
  CHECK(e.ticket == ticket);
  CHECK(e.socket == socket);
  REQUIRE(e.started());
  CHECK_FALSE(e.reason);
  CHECK(e.waited == 1500ms);
  CHECK(e.startups == 0);
  CHECK(engine.startups().current == 1);
  const auto info = engine.instance(*e.instance);
  REQUIRE(info);
  CHECK(info->peer == ip("192.0.2.2"));
  CHECK(info->admitted_at == later);
  const auto stats = *engine.socket_stats(socket);
  CHECK(stats.parked == 0);
  CHECK(stats.admitted == 2);
  CHECK(stats.accepted == 2);
  CHECK(engine.room_stats().started == 1);
  CHECK(engine.room_stats().waited_max == 1500ms);
  CHECK(engine.room_stats().waited_total == 1500ms);
  CHECK(engine.parked(ticket) == nullptr);
  CHECK_FALSE(engine.next_room_deadline());
}

TEST_CASE("slots go round robin between blocks, not by parked connections",
          "[policy][admission][room]") {
  // 100 parked from one /24 (PerSourceNetBlockSize=24), then one from another block: the lone
  // one starts within the first two freed slots.
  auto crowd = GENERATE(1u, 10u, 100u);
  GlobalConfig global = room_config(1);
  global.net_block_size = {24, 64};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  auto running = admit_one(engine, socket, "203.0.113.1");
  for (unsigned i = 0; i < crowd; ++i) park_one(engine, socket, "198.51.100." + std::to_string(i));
  park_one(engine, socket, "192.0.2.77");
  std::vector<std::string> order;
  TimePoint now = t0;
  while (engine.room_stats().parked > 0) {
    now += 10ms;
    REQUIRE(engine.mark_ready(running, now));
    const auto exits = engine.next_from_room(now);
    REQUIRE(exits.size() == 1);
    REQUIRE(exits[0].started());
    order.push_back(exits[0].peer.to_string());
    running = *exits[0].instance;
  }
  REQUIRE(order.size() == crowd + 1);
  const auto lone = std::find(order.begin(), order.end(), "192.0.2.77") - order.begin();
  CHECK(lone <= 1);
  // Within the crowd's block: first come, first served.
  CHECK(order[lone == 0 ? 1 : 0] == "198.51.100.0");
}

TEST_CASE("three blocks alternate while all three have connections parked",
          "[policy][admission][room]") {
  AdmissionEngine engine(room_config(3));
  const auto socket = engine.add_socket(roomy_socket());
  std::vector<InstanceId> running;
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
    running.push_back(admit_one(engine, socket, p));
  for (int i = 0; i < 3; ++i) park_one(engine, socket, "192.0.2.1");
  park_one(engine, socket, "192.0.2.2");
  for (int i = 0; i < 2; ++i) park_one(engine, socket, "192.0.2.3");
  // Three slots free at once: one turn each.
  for (auto id : running) engine.mark_ready(id, t0 + 1s);
  CHECK(started_peers(engine.next_from_room(t0 + 1s)) ==
        std::vector<std::string>{"192.0.2.1", "192.0.2.2", "192.0.2.3"});
  CHECK(engine.room_stats().parked == 3);
  CHECK(engine.room_stats().blocks == 2);
}

TEST_CASE("exempt sources skip the room and keep their reserved slots",
          "[policy][admission][room][exempt]") {
  GlobalConfig global = room_config(2);
  global.exempt_sources = *usherd::policy::parse_cidr_list("10.9.0.0/16");
  global.reserved_startups = 1;
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.1");
  admit_one(engine, socket, "192.0.2.2");
  park_one(engine, socket, "192.0.2.3");
  ScriptedRandom never{};
  // The admin goes ahead of the room, into the reserve...
  CHECK(outcome_of(engine.admit(socket, ip("10.9.0.1"), t0, never)) == "admitted");
  // ...and past it is refused as before, never parked.
  CHECK(outcome_of(engine.admit(socket, ip("10.9.0.2"), t0, never)) == "startups-full");
  CHECK(engine.room_stats().parked == 1);
  CHECK(engine.startups().current == 3);
}

TEST_CASE("a penalised source never enters the room", "[policy][admission][room][penalty]") {
  GlobalConfig global = room_config(1);
  global.penalties = *usherd::policy::PenaltyConfig::parse("crash:60s min:10s");
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.1");
  engine.penalise(ip("198.51.100.9"), PenaltyKind::crash, t0);
  ScriptedRandom never{};
  CHECK(outcome_of(engine.admit(socket, ip("198.51.100.9"), t0 + 1s, never)) == "penalty");
  CHECK(engine.room_stats().parked == 0);
}

TEST_CASE("a block penalised while it waits is dropped at its turn, and the next starts",
          "[policy][admission][room][penalty]") {
  GlobalConfig global = room_config(1);
  global.penalties = *usherd::policy::PenaltyConfig::parse("crash:60s min:10s");
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  const auto running = admit_one(engine, socket, "192.0.2.1");
  park_one(engine, socket, "198.51.100.9");
  park_one(engine, socket, "192.0.2.2");
  engine.penalise(ip("198.51.100.9"), PenaltyKind::crash, t0 + 1s);
  engine.mark_ready(running, t0 + 2s);
  const auto exits = engine.next_from_room(t0 + 2s);
  REQUIRE(exits.size() == 2);
  CHECK(exits[0].peer == ip("198.51.100.9"));
  CHECK(exits[0].reason == DropReason::penalty);
  CHECK_FALSE(exits[0].started());
  CHECK(exits[1].peer == ip("192.0.2.2"));
  CHECK(exits[1].started());
  CHECK(engine.socket_stats(socket)->dropped_for(DropReason::penalty) == 1);
}

TEST_CASE("PerSourceMaxParked bounds one block's share of the room",
          "[policy][admission][room][bounds]") {
  auto [limit, block_bits] = GENERATE(table<unsigned, unsigned>({{1, 32}, {3, 32}, {3, 24}}));
  GlobalConfig global = room_config(1);
  global.waiting_room.per_source_max_parked = limit;
  global.net_block_size = {block_bits, 128};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.200");
  // Same address each time for /32; neighbours in one /24 otherwise.
  auto peer = [&](unsigned i) {
    return block_bits == 32 ? std::string("198.51.100.9") : "198.51.100." + std::to_string(i);
  };
  for (unsigned i = 0; i < limit; ++i) park_one(engine, socket, peer(i));
  ScriptedRandom never{};
  CHECK(outcome_of(engine.admit(socket, ip(peer(limit)), t0, never)) == "queue-full");
  CHECK(outcome_of(engine.admit(socket, ip("203.0.113.1"), t0, never)) == "parked");
  CHECK(engine.socket_stats(socket)->dropped_for(DropReason::queue_full) == 1);
}

TEST_CASE("a full room pushes out the largest block's newest for a smaller block",
          "[policy][admission][room][bounds]") {
  GlobalConfig global = room_config(1);
  global.waiting_room.max_parked = MaxStartups{4, 30, 4};
  AdmissionEngine engine(global);
  const auto a = engine.add_socket(roomy_socket());
  const auto b = engine.add_socket(roomy_socket());
  admit_one(engine, a, "192.0.2.200");
  std::vector<TicketId> crowd;
  for (int i = 0; i < 4; ++i) crowd.push_back(park_one(engine, a, "198.51.100.9"));
  ScriptedRandom never{};
  const auto d = engine.admit(b, ip("203.0.113.1"), t0 + 1s, never);
  REQUIRE(d.is_parked());
  REQUIRE(d.pushed_out);
  CHECK(d.pushed_out->ticket == crowd.back());
  CHECK(d.pushed_out->socket == a);
  CHECK(d.pushed_out->reason == DropReason::queue_full);
  CHECK(d.pushed_out->waited == 1s);
  CHECK(engine.socket_stats(a)->dropped_for(DropReason::queue_full) == 1);
  CHECK(engine.socket_stats(a)->parked == 3);
  CHECK(engine.room_stats().parked == 4);
  // 3 against 1: one more push-out for a third block (3 > 0 + 1)...
  REQUIRE(engine.admit(b, ip("203.0.113.2"), t0, never).pushed_out);
  // ...but with the crowd at 2 and the arrival's block at 1, no swap (2 <= 1 + 1).
  CHECK(outcome_of(engine.admit(b, ip("203.0.113.2"), t0, never)) == "queue-full");
  CHECK(engine.room_stats().parked == 4);
}

TEST_CASE("a full room of equal blocks pushes no one out", "[policy][admission][room][bounds]") {
  GlobalConfig global = room_config(1);
  global.waiting_room.max_parked = MaxStartups{3, 30, 3};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.200");
  for (const char* p : {"198.51.100.1", "198.51.100.2", "198.51.100.3"})
    park_one(engine, socket, p);
  ScriptedRandom never{};
  const auto d = engine.admit(socket, ip("203.0.113.1"), t0, never);
  CHECK(outcome_of(d) == "queue-full");
  CHECK_FALSE(d.pushed_out);
}

TEST_CASE("MaxParked start:rate:full draws early drop on the room's occupancy",
          "[policy][admission][room][bounds]") {
  // MaxParked=2:50:6 with 3 parked: p = 50 + 50 * 1 / 4 = 62.
  auto [draw, outcome] = GENERATE(table<std::uint32_t, std::string>({
      {0, "queue-early-drop"},
      {61, "queue-early-drop"},
      {62, "parked"},
  }));
  GlobalConfig global = room_config(1);
  global.waiting_room.max_parked = MaxStartups{2, 50, 6};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.200");
  for (const char* p : {"198.51.100.1", "198.51.100.2"}) park_one(engine, socket, p);
  ScriptedRandom fifty{50};  // p = 50 at n = 2: 50 parks
  REQUIRE(engine.admit(socket, ip("198.51.100.3"), t0, fifty).is_parked());
  ScriptedRandom script{draw};
  const auto d = engine.admit(socket, ip("203.0.113.1"), t0, script);
  CHECK(outcome_of(d) == outcome);
  CHECK(d.parked == 3);
  CHECK(script.draws == 1);
}

TEST_CASE("a connection parked past MaxParkedWait is dropped as queue-timeout",
          "[policy][admission][room][timeout]") {
  GlobalConfig global = room_config(1);
  global.waiting_room.max_wait = 8s;
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  const auto running = admit_one(engine, socket, "192.0.2.1");
  const auto early = park_one(engine, socket, "198.51.100.1", t0);
  const auto late = park_one(engine, socket, "198.51.100.2", t0 + 3s);
  REQUIRE(engine.next_room_deadline() == t0 + 8s);
  CHECK(engine.expire(t0 + 8s - 1us).empty());
  const auto timed_out = engine.expire(t0 + 8s);
  REQUIRE(timed_out.size() == 1);
  CHECK(timed_out[0].ticket == early);
  CHECK(timed_out[0].reason == DropReason::queue_timeout);
  CHECK(timed_out[0].waited == 8s);
  CHECK(engine.next_room_deadline() == t0 + 11s);
  // A slot that frees after the deadline never starts the expired connection.
  engine.mark_ready(running, t0 + 12s);
  const auto exits = engine.next_from_room(t0 + 12s);
  REQUIRE(exits.size() == 1);
  CHECK(exits[0].ticket == late);
  CHECK(exits[0].reason == DropReason::queue_timeout);
  CHECK(engine.startups().current == 0);
  CHECK(engine.socket_stats(socket)->dropped_for(DropReason::queue_timeout) == 2);
}

TEST_CASE("a parked client that hangs up is forgotten without a drop",
          "[policy][admission][room]") {
  AdmissionEngine engine(room_config(1));
  const auto socket = engine.add_socket(roomy_socket());
  const auto running = admit_one(engine, socket, "192.0.2.1");
  const auto gone = park_one(engine, socket, "198.51.100.1");
  park_one(engine, socket, "198.51.100.2");
  CHECK(engine.cancel(gone));
  CHECK_FALSE(engine.cancel(gone));
  const auto stats = *engine.socket_stats(socket);
  CHECK(stats.abandoned == 1);
  CHECK(stats.parked == 1);
  CHECK(stats.dropped_total() == 0);
  engine.mark_ready(running, t0 + 1s);
  CHECK(started_peers(engine.next_from_room(t0 + 1s)) == std::vector<std::string>{"198.51.100.2"});
}

TEST_CASE("a socket's X-MaxStartups parks only its own connections",
          "[policy][admission][room][socket]") {
  AdmissionEngine engine(room_config(10));
  SocketConfig tight = roomy_socket();
  tight.max_startups = MaxStartups{1, 30, 1};
  const auto ssh = engine.add_socket(tight);
  const auto git = engine.add_socket(roomy_socket());
  const auto ssh_running = admit_one(engine, ssh, "192.0.2.1");
  park_one(engine, ssh, "192.0.2.2");
  // The other socket's budget has room: its connection starts at once.
  const auto git_running = admit_one(engine, git, "192.0.2.3");
  // A slot on the other socket is no slot for ssh's parked connection.
  engine.mark_ready(git_running, t0 + 1s);
  CHECK(engine.next_from_room(t0 + 1s).empty());
  engine.mark_ready(ssh_running, t0 + 2s);
  CHECK(started_peers(engine.next_from_room(t0 + 2s)) == std::vector<std::string>{"192.0.2.2"});
  CHECK(engine.socket_stats(ssh)->startups == 1);
}

TEST_CASE("PerSourceMaxStartups parks a block while others start, and it keeps its turn",
          "[policy][admission][room][socket]") {
  GlobalConfig global = room_config(3);
  global.per_source_max_startups = 1;
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  const auto a_running = admit_one(engine, socket, "198.51.100.1");
  park_one(engine, socket, "198.51.100.1");
  const auto b_running = admit_one(engine, socket, "192.0.2.1");
  park_one(engine, socket, "192.0.2.1");
  admit_one(engine, socket, "203.0.113.1");  // global full now (3)
  park_one(engine, socket, "203.0.113.2");
  // B's slot frees: A's parked connection is still held by A's own limit; the slot goes to
  // the next block that can use it (B), and A stays first in line.
  engine.mark_ready(b_running, t0 + 1s);
  CHECK(started_peers(engine.next_from_room(t0 + 1s)) == std::vector<std::string>{"192.0.2.1"});
  engine.mark_ready(a_running, t0 + 2s);
  CHECK(started_peers(engine.next_from_room(t0 + 2s)) == std::vector<std::string>{"198.51.100.1"});
  CHECK(engine.room_stats().parked == 1);
}

TEST_CASE("MaxConnections holds a parked connection until an instance ends",
          "[policy][admission][room][socket]") {
  AdmissionEngine engine(room_config(1));
  SocketConfig config;
  config.max_connections = 2;
  const auto socket = engine.add_socket(config);
  const auto first = admit_one(engine, socket, "192.0.2.1");
  park_one(engine, socket, "192.0.2.2");
  park_one(engine, socket, "192.0.2.3");
  engine.mark_ready(first, t0);
  const auto exits = engine.next_from_room(t0);
  REQUIRE(exits.size() == 1);
  engine.mark_ready(*exits[0].instance, t0 + 1s);
  // No startup left, but two live instances: MaxConnections=2 holds the third.
  CHECK(engine.next_from_room(t0 + 1s).empty());
  engine.release(first, Outcome::exited, t0 + 2s);
  CHECK(started_peers(engine.next_from_room(t0 + 2s)) == std::vector<std::string>{"192.0.2.3"});
}

TEST_CASE(
    "at MaxConnections a connection waits while some instances are still starting, and is "
    "refused at once when all of them are sessions",
    "[policy][admission][room][socket]") {
  AdmissionEngine engine(room_config(100));
  SocketConfig config;
  config.max_connections = 2;
  config.max_connections_per_source = 1;
  const auto socket = engine.add_socket(config);
  const auto first = admit_one(engine, socket, "192.0.2.1");
  const auto second = admit_one(engine, socket, "192.0.2.2");
  // Two instances, both starting: the budget has room (full 100), MaxConnections=2 not.
  park_one(engine, socket, "192.0.2.3");
  ScriptedRandom never{};
  // Its own address already at MaxConnectionsPerSource=1: refused as ever, not parked.
  CHECK(outcome_of(engine.admit(socket, ip("192.0.2.1"), t0, never)) == "max-connections");
  engine.mark_ready(first, t0 + 1s);
  CHECK(engine.next_from_room(t0 + 1s).empty());
  engine.release(second, Outcome::exited, t0 + 2s);
  const auto exits = engine.next_from_room(t0 + 2s);
  REQUIRE(started_peers(exits) == std::vector<std::string>{"192.0.2.3"});
  engine.mark_ready(*exits[0].instance, t0 + 3s);
  // Both instances are sessions now: nothing would free a slot soon.
  CHECK(outcome_of(engine.admit(socket, ip("192.0.2.4"), t0 + 3s, never)) == "max-connections");
  CHECK(engine.room_stats().parked == 0);
}

TEST_CASE("raising MaxStartups by a reload starts as many as now fit, in turn",
          "[policy][admission][room][reload]") {
  GlobalConfig global = room_config(1);
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  admit_one(engine, socket, "192.0.2.1");
  for (int i = 0; i < 3; ++i) park_one(engine, socket, "198.51.100.1");
  park_one(engine, socket, "198.51.100.2");
  global.max_startups = MaxStartups{4, 30, 4};
  global.waiting_room.enabled = false;  // tickets parked before still start
  engine.reconfigure(global);
  CHECK(started_peers(engine.next_from_room(t0 + 1s)) ==
        std::vector<std::string>{"198.51.100.1", "198.51.100.2", "198.51.100.1"});
  CHECK(engine.room_stats().parked == 1);
  CHECK(engine.startups().current == 4);
}

TEST_CASE("a removed socket's parked connections keep its state until they leave",
          "[policy][admission][room][reload]") {
  AdmissionEngine engine(room_config(1));
  const auto socket = engine.add_socket(roomy_socket());
  const auto running = admit_one(engine, socket, "192.0.2.1");
  const auto ticket = park_one(engine, socket, "192.0.2.2");
  engine.release(running, Outcome::exited, t0);
  REQUIRE(engine.remove_socket(socket));
  REQUIRE(engine.socket_stats(socket));
  CHECK(engine.socket_stats(socket)->parked == 1);
  CHECK(engine.cancel(ticket));
  CHECK_FALSE(engine.socket_stats(socket));
}

TEST_CASE("statistics add up with the room: accepted is admitted, dropped, parked, abandoned",
          "[policy][admission][room]") {
  GlobalConfig global = room_config(3);
  global.waiting_room.max_parked = MaxStartups{4, 50, 8};
  global.waiting_room.per_source_max_parked = 3;
  global.net_block_size = {30, 128};
  global.waiting_room.max_wait = 1s;
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket(roomy_socket());
  SeededRandom random(11);
  std::vector<InstanceId> live;
  std::vector<TicketId> parked;
  TimePoint now = t0;
  for (unsigned i = 0; i < 400; ++i) {
    now += 100ms;
    const auto d =
        engine.admit(socket, IpAddress::from_v4(0xc0000200u + random.uniform(16)), now, random);
    if (d.admitted()) live.push_back(*d.instance);
    if (d.is_parked()) parked.push_back(*d.ticket);
    const unsigned op = random.uniform(4);
    if (op == 0 && !live.empty()) {
      engine.release(live.front(), Outcome::exited, now);
      live.erase(live.begin());
    } else if (op == 1 && !parked.empty()) {
      engine.cancel(parked[random.uniform(static_cast<std::uint32_t>(parked.size()))]);
    }
    for (const auto& e : engine.next_from_room(now))
      if (e.started()) live.push_back(*e.instance);
    CHECK(engine.startups().current <= 3);
    CHECK(engine.room_stats().parked <= 8);
  }
  const auto s = *engine.socket_stats(socket);
  CHECK(s.accepted == 400);
  CHECK(s.accepted == s.admitted + s.dropped_total() + s.parked + s.abandoned);
  CHECK(s.dropped_for(DropReason::queue_full) > 0);
  CHECK(s.dropped_for(DropReason::queue_early_drop) > 0);
  CHECK(s.dropped_for(DropReason::queue_timeout) > 0);
  CHECK(s.abandoned > 0);
  CHECK(engine.room_stats().peak <= 8);
  CHECK(engine.room_stats().started > 0);
}

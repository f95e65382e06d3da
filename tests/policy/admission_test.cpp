// Tests for policy/admission: every rule, the order of the rules, the early-drop curve, exempt
// sources with reserved slots, the instance lifecycle with penalties, and reconfiguration.
#include "policy/admission.h"

#include "tests/catch.h"

#include <optional>
#include <string>
#include <vector>

#include "random_sources.h"

using namespace std::chrono_literals;
using usherd::policy::AdmissionEngine;
using usherd::policy::Cidr;
using usherd::policy::Decision;
using usherd::policy::DropReason;
using usherd::policy::GlobalConfig;
using usherd::policy::InstanceId;
using usherd::policy::IpAddress;
using usherd::policy::MaxStartups;
using usherd::policy::Outcome;
using usherd::policy::PenaltyKind;
using usherd::policy::SocketConfig;
using usherd::policy::SocketId;
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

std::vector<Cidr> cidrs(const std::string& text) {
  auto parsed = usherd::policy::parse_cidr_list(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

// A host address that differs per i, all in 198.51.100.0/24 .. 198.51.103.0/24.
IpAddress host(unsigned i) {
  return IpAddress::from_v4(0xc6336400u + i);
}

// Admits n connections from distinct hosts with no random window in the way; returns ids.
std::vector<InstanceId> fill(AdmissionEngine& engine, SocketId socket, unsigned n,
                             unsigned first_host = 1) {
  std::vector<InstanceId> ids;
  ScriptedRandom never{};
  for (unsigned i = 0; i < n; ++i) {
    auto decision = engine.admit(socket, host(first_host + i), t0, never);
    REQUIRE(decision.admitted());
    ids.push_back(*decision.instance);
  }
  return ids;
}

std::string reason_of(const Decision& decision) {
  return decision.reason ? std::string(to_string(*decision.reason)) : "admitted";
}

}  // namespace

TEST_CASE("a connection within every limit is admitted and counted as a startup",
          "[policy][admission]") {
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  ScriptedRandom never{};
  auto decision = engine.admit(socket, ip("192.0.2.1"), t0, never);
  REQUIRE(decision.admitted());
  CHECK_FALSE(decision.reason.has_value());
  CHECK(decision.startups == 0);
  CHECK(engine.startups().current == 1);
  auto stats = engine.socket_stats(socket);
  REQUIRE(stats);
  CHECK(stats->startups == 1);
  CHECK(stats->instances == 1);
  CHECK(stats->accepted == 1);
  CHECK(stats->admitted == 1);
  CHECK(stats->dropped_total() == 0);
  CHECK(never.draws == 0);
}

TEST_CASE("IPAddressAllow overrides IPAddressDeny, as systemd", "[policy][admission][acl]") {
  auto [allow, deny, peer, admitted] = GENERATE(table<std::string, std::string, std::string, bool>({
      {"", "", "192.0.2.1", true},
      {"", "any", "192.0.2.1", false},
      {"", "any", "2001:db8::1", false},
      {"localhost", "any", "127.0.0.1", true},
      {"localhost", "any", "::1", true},
      {"localhost", "any", "192.0.2.1", false},
      {"192.0.2.0/24", "", "198.51.100.1", true},
      {"", "192.0.2.0/24", "192.0.2.200", false},
      {"", "192.0.2.0/24", "192.0.3.1", true},
      {"192.0.2.7", "192.0.2.0/24", "192.0.2.7", true},
      {"192.0.2.7", "192.0.2.0/24", "192.0.2.8", false},
      {"", "192.0.2.0/24", "::ffff:192.0.2.9", false},
  }));
  AdmissionEngine engine;
  SocketConfig config;
  config.ip_address_allow = cidrs(allow);
  config.ip_address_deny = cidrs(deny);
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  auto decision = engine.admit(socket, ip(peer), t0, never);
  CHECK(reason_of(decision) == (admitted ? "admitted" : "acl"));
}

TEST_CASE("MaxConnections counts live instances, ready or not", "[policy][admission]") {
  AdmissionEngine engine;
  SocketConfig config;
  config.max_connections = 3;
  const auto socket = engine.add_socket(config);
  auto ids = fill(engine, socket, 3);
  engine.mark_ready(ids[0], t0);
  ScriptedRandom never{};
  CHECK(reason_of(engine.admit(socket, host(50), t0, never)) == "max-connections");
  engine.release(ids[0], Outcome::exited, t0);
  CHECK(reason_of(engine.admit(socket, host(51), t0, never)) == "admitted");
}

TEST_CASE("MaxConnectionsPerSource counts live instances from the exact address",
          "[policy][admission]") {
  AdmissionEngine engine;
  SocketConfig config;
  config.max_connections_per_source = 2;
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  const auto peer = ip("192.0.2.1");
  auto first = engine.admit(socket, peer, t0, never);
  REQUIRE(first.admitted());
  engine.mark_ready(*first.instance, t0);
  REQUIRE(engine.admit(socket, peer, t0, never).admitted());
  CHECK(reason_of(engine.admit(socket, peer, t0, never)) == "per-source-connections");
  CHECK(reason_of(engine.admit(socket, ip("192.0.2.2"), t0, never)) == "admitted");
  // The mapped spelling of the same peer is the same source.
  CHECK(reason_of(engine.admit(socket, ip("::ffff:192.0.2.1"), t0, never)) ==
        "per-source-connections");
}

TEST_CASE("MaxConnectionsPerSource is per socket", "[policy][admission]") {
  AdmissionEngine engine;
  SocketConfig config;
  config.max_connections_per_source = 1;
  const auto a = engine.add_socket(config);
  const auto b = engine.add_socket(config);
  ScriptedRandom never{};
  REQUIRE(engine.admit(a, ip("192.0.2.1"), t0, never).admitted());
  CHECK(reason_of(engine.admit(a, ip("192.0.2.1"), t0, never)) == "per-source-connections");
  CHECK(reason_of(engine.admit(b, ip("192.0.2.1"), t0, never)) == "admitted");
}

TEST_CASE("PerSourceMaxStartups counts startups per block on every socket", "[policy][admission]") {
  GlobalConfig global;
  global.per_source_max_startups = 2;
  global.net_block_size = {24, 64};
  AdmissionEngine engine(global);
  const auto a = engine.add_socket({});
  const auto b = engine.add_socket({});
  ScriptedRandom never{};
  auto first = engine.admit(a, ip("192.0.2.1"), t0, never);
  REQUIRE(first.admitted());
  REQUIRE(engine.admit(b, ip("192.0.2.2"), t0, never).admitted());
  CHECK(reason_of(engine.admit(a, ip("192.0.2.3"), t0, never)) == "per-source-startups");
  CHECK(reason_of(engine.admit(a, ip("192.0.3.3"), t0, never)) == "admitted");
  // A ready instance is no longer a startup.
  engine.mark_ready(*first.instance, t0);
  CHECK(reason_of(engine.admit(b, ip("192.0.2.4"), t0, never)) == "admitted");
  CHECK(engine.tracked_startup_blocks() == 2);
}

TEST_CASE("a socket's X-PerSourceMaxStartups overrides the global one", "[policy][admission]") {
  GlobalConfig global;
  global.per_source_max_startups = 1;
  AdmissionEngine engine(global);
  SocketConfig loose;
  loose.per_source_max_startups = 3;
  const auto strict = engine.add_socket({});
  const auto relaxed = engine.add_socket(loose);
  ScriptedRandom never{};
  const auto peer = ip("192.0.2.1");
  REQUIRE(engine.admit(strict, peer, t0, never).admitted());
  CHECK(reason_of(engine.admit(strict, peer, t0, never)) == "per-source-startups");
  CHECK(reason_of(engine.admit(relaxed, peer, t0, never)) == "admitted");
  CHECK(reason_of(engine.admit(relaxed, peer, t0, never)) == "admitted");
  CHECK(reason_of(engine.admit(relaxed, peer, t0, never)) == "per-source-startups");
}

TEST_CASE("startups-full applies to the global full and to the socket's own full",
          "[policy][admission]") {
  auto [global_text, socket_text, admitted_before_full] =
      GENERATE(table<std::string, std::string, unsigned>({
          {"5", "", 5},
          {"5", "3", 3},
          {"3", "5", 3},
          {"2:100:4", "", 2},  // rate 100: early drop from start on
      }));
  GlobalConfig global;
  global.max_startups = *MaxStartups::parse(global_text);
  AdmissionEngine engine(global);
  SocketConfig config;
  if (!socket_text.empty()) config.max_startups = *MaxStartups::parse(socket_text);
  const auto socket = engine.add_socket(config);
  fill(engine, socket, admitted_before_full);
  ScriptedRandom never{};
  const auto refused = engine.admit(socket, host(100), t0, never);
  const bool early = global.max_startups.rate == 100;
  CHECK(reason_of(refused) == (early ? "startups-early-drop" : "startups-full"));
  CHECK(never.draws == 0);
}

TEST_CASE("early drop draws against OpenSSH's probability at n", "[policy][admission][early]") {
  // 10:30:100 at n = 10: p = 30, so a draw of 29 drops and 30 admits.
  auto [draw, reason] = GENERATE(table<std::uint32_t, std::string>({
      {0, "startups-early-drop"},
      {29, "startups-early-drop"},
      {30, "admitted"},
      {99, "admitted"},
  }));
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  fill(engine, socket, 10);
  ScriptedRandom script{draw};
  const auto decision = engine.admit(socket, host(200), t0, script);
  CHECK(reason_of(decision) == reason);
  CHECK(decision.startups == 10);
  CHECK(script.draws == 1);
}

TEST_CASE("the global curve draws first, then the socket's own curve",
          "[policy][admission][early]") {
  // Global 4:50:8 at n = 5 -> p 62. Socket 2:30:10 at its n = 5 -> 30 + 70*3/8 = 56.
  auto [draws, reason, used] = GENERATE(table<std::vector<std::uint32_t>, std::string, int>({
      {{61}, "startups-early-drop", 1},
      {{62, 55}, "startups-early-drop", 2},
      {{62, 56}, "admitted", 2},
  }));
  GlobalConfig global;
  global.max_startups = {4, 50, 8};
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_startups = MaxStartups{2, 30, 10};
  const auto socket = engine.add_socket(config);
  // Five startups: fill with a script that admits on both curves.
  ScriptedRandom admit_all{99, 99, 99, 99, 99, 99, 99, 99};
  for (unsigned i = 0; i < 5; ++i) REQUIRE(engine.admit(socket, host(i), t0, admit_all).admitted());
  ScriptedRandom script{};
  if (draws.size() == 1)
    script = ScriptedRandom{draws[0]};
  else
    script = ScriptedRandom{draws[0], draws[1]};
  const auto decision = engine.admit(socket, host(300), t0, script);
  CHECK(reason_of(decision) == reason);
  CHECK(script.draws == used);
}

TEST_CASE("the early-drop rate at n matches the curve statistically",
          "[policy][admission][early]") {
  auto [spec, n] = GENERATE(table<std::string, unsigned>({
      {"10:30:100", 10},
      {"10:30:100", 55},
      {"10:30:100", 90},
      {"4:50:8", 5},
      {"4:50:8", 7},
  }));
  GlobalConfig global;
  global.max_startups = *MaxStartups::parse(spec);
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_connections = 1000;
  const auto socket = engine.add_socket(config);
  SeededRandom admit_fill(1);
  unsigned filled = 0;
  for (unsigned i = 0; filled < n; ++i) {
    if (engine.admit(socket, host(i), t0, admit_fill).admitted()) ++filled;
  }
  REQUIRE(engine.startups().current == n);
  SeededRandom random(20240611);
  const int trials = 20000;
  int dropped = 0;
  for (int i = 0; i < trials; ++i) {
    auto decision = engine.admit(socket, host(5000), t0, random);
    if (decision.admitted()) {
      engine.spawn_failed(*decision.instance);  // keep n constant
    } else {
      REQUIRE(*decision.reason == DropReason::startups_early_drop);
      ++dropped;
    }
  }
  const double expected = global.max_startups.drop_probability_percent(n) / 100.0;
  CHECK(static_cast<double>(dropped) / trials == Approx(expected).margin(0.02));
}

TEST_CASE("rules apply in the documented order", "[policy][admission][order]") {
  // Every rule is armed to refuse; switching off the earlier ones exposes the next.
  auto [first_on, reason] = GENERATE(table<int, std::string>({
      {0, "acl"},
      {1, "penalty"},
      {2, "rate"},
      {3, "max-connections"},
      {4, "per-source-connections"},
      {5, "per-source-startups"},
      {6, "startups-full"},
      {7, "startups-early-drop"},
  }));
  const auto peer = ip("192.0.2.1");
  GlobalConfig global;
  global.max_startups = {1, 100, 3};  // n=1 or 2: early drop for certain
  global.per_source_max_startups = first_on <= 5 ? 1u : 100u;
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_connections = first_on <= 3 ? 1 : 100;
  config.max_connections_per_source = first_on <= 4 ? 1 : 0;
  if (first_on <= 2) {
    config.trigger_limit_interval = 10s;
    config.trigger_limit_burst = 1;
  }
  const auto socket = engine.add_socket(config);
  // One live startup from the peer, admitted before any limit was reached. For the
  // startups-full row a second one fills global full (3) via a relaxed socket.
  ScriptedRandom never{};
  SocketConfig relaxed;
  relaxed.max_connections = 100;
  const auto side = engine.add_socket(relaxed);
  GlobalConfig open_global = global;
  open_global.max_startups = {100, 30, 100};
  open_global.per_source_max_startups.reset();
  engine.reconfigure(open_global);
  REQUIRE(engine.admit(socket, peer, t0, never).admitted());  // takes the trigger burst too
  if (first_on == 6) {
    REQUIRE(engine.admit(side, ip("203.0.113.1"), t0, never).admitted());
    REQUIRE(engine.admit(side, ip("203.0.113.2"), t0, never).admitted());
  }
  engine.reconfigure(global);
  if (first_on <= 1) engine.penalise(peer, PenaltyKind::crash, t0);
  if (first_on == 0) {
    config.ip_address_deny = cidrs("any");
    REQUIRE(engine.update_socket(socket, config));
  }
  CHECK(reason_of(engine.admit(socket, peer, t0 + 1s, never)) == reason);
  CHECK(never.draws == 0);
  const auto stats = engine.socket_stats(socket);
  REQUIRE(stats);
  CHECK(stats->dropped_for(*usherd::policy::parse_drop_reason(reason)) == 1);
}

TEST_CASE("TriggerLimit drops the burst+1th connection and recovers in the next window",
          "[policy][admission][rate]") {
  AdmissionEngine engine;
  SocketConfig config;
  config.trigger_limit_interval = 2s;
  config.trigger_limit_burst = 3;
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  for (unsigned i = 0; i < 3; ++i) {
    CHECK(reason_of(engine.admit(socket, host(i), t0 + std::chrono::milliseconds(i), never)) ==
          "admitted");
  }
  CHECK(reason_of(engine.admit(socket, host(3), t0 + 1s, never)) == "rate");
  CHECK(reason_of(engine.admit(socket, host(4), t0 + 2s, never)) == "rate");
  CHECK(engine.has_socket(socket));  // no limit ever fails a socket
  CHECK(reason_of(engine.admit(socket, host(5), t0 + 2001ms, never)) == "admitted");
}

TEST_CASE("TriggerLimit needs both keys", "[policy][admission][rate]") {
  auto [interval_set, burst_set] = GENERATE(table<bool, bool>({{true, false}, {false, true}}));
  AdmissionEngine engine;
  SocketConfig config;
  if (interval_set) config.trigger_limit_interval = 2s;
  if (burst_set) config.trigger_limit_burst = 1;
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  for (unsigned i = 0; i < 5; ++i) REQUIRE(engine.admit(socket, host(i), t0, never).admitted());
}

TEST_CASE("exempt sources skip penalty, rate, per-source rules and early drop",
          "[policy][admission][exempt]") {
  GlobalConfig global;
  global.exempt_sources = cidrs("10.0.0.0/8");
  global.max_startups = {1, 100, 50};
  global.per_source_max_startups = 1;
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_connections_per_source = 1;
  config.trigger_limit_interval = 10s;
  config.trigger_limit_burst = 1;
  const auto socket = engine.add_socket(config);
  const auto admin = ip("10.0.0.5");
  engine.penalise(admin, PenaltyKind::crash, t0);  // exempt: not recorded
  CHECK(engine.penalised_sources(t0).empty());
  ScriptedRandom never{};
  for (int i = 0; i < 4; ++i) {
    const auto decision = engine.admit(socket, admin, t0, never);
    CHECK(decision.exempt);
    CHECK(reason_of(decision) == "admitted");
  }
  CHECK(never.draws == 0);
  // A non-exempt peer now meets the rate limit, whose burst the admin did not use.
  CHECK(reason_of(engine.admit(socket, ip("192.0.2.1"), t0, never)) == "startups-early-drop");
}

TEST_CASE("IPAddressDeny still applies to exempt sources", "[policy][admission][exempt]") {
  GlobalConfig global;
  global.exempt_sources = cidrs("10.0.0.0/8");
  AdmissionEngine engine(global);
  SocketConfig config;
  config.ip_address_deny = cidrs("10.0.0.0/8");
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  CHECK(reason_of(engine.admit(socket, ip("10.1.1.1"), t0, never)) == "acl");
}

TEST_CASE("exempt sources may exceed full and MaxConnections by ReservedStartups",
          "[policy][admission][exempt]") {
  auto [max_startups, max_connections, reserved] = GENERATE(table<std::string, unsigned, unsigned>({
      {"4", 64, 2},
      {"64", 4, 2},
      {"4", 64, 0},
      {"4", 64, 5},
      {"64", 4, 1},
  }));
  GlobalConfig global;
  global.exempt_sources = cidrs("10.0.0.0/8 2001:db8:ad::/48");
  global.max_startups = *MaxStartups::parse(max_startups);
  global.reserved_startups = reserved;
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_connections = max_connections;
  const auto socket = engine.add_socket(config);
  fill(engine, socket, 4);
  ScriptedRandom never{};
  const std::string at_limit = max_connections == 4 ? "max-connections" : "startups-full";
  CHECK(reason_of(engine.admit(socket, host(99), t0, never)) == at_limit);
  for (unsigned i = 0; i < reserved; ++i) {
    CHECK(reason_of(engine.admit(socket, ip(i % 2 ? "10.0.0.1" : "2001:db8:ad::1"), t0, never)) ==
          "admitted");
  }
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.2"), t0, never)) == at_limit);
}

TEST_CASE("exempt sources also get reserved slots above a socket's own full",
          "[policy][admission][exempt]") {
  GlobalConfig global;
  global.exempt_sources = cidrs("10.0.0.0/8");
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_startups = MaxStartups{2, 30, 2};
  const auto socket = engine.add_socket(config);
  fill(engine, socket, 2);
  ScriptedRandom never{};
  CHECK(reason_of(engine.admit(socket, host(9), t0, never)) == "startups-full");
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.1"), t0, never)) == "admitted");
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.1"), t0, never)) == "admitted");
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.1"), t0, never)) == "startups-full");
}

TEST_CASE("mark_ready ends the startup but keeps the instance", "[policy][admission][life]") {
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  auto ids = fill(engine, socket, 3);
  CHECK(engine.startups().current == 3);
  CHECK(engine.mark_ready(ids[1], t0 + 2s));
  CHECK_FALSE(engine.mark_ready(ids[1], t0 + 3s));
  CHECK(engine.startups().current == 2);
  CHECK(engine.startups().peak == 3);
  const auto stats = engine.socket_stats(socket);
  CHECK(stats->startups == 2);
  CHECK(stats->instances == 3);
  const auto info = engine.instance(ids[1]);
  REQUIRE(info);
  CHECK(info->ready);
  CHECK(info->ready_at == t0 + 2s);
  CHECK(info->socket == socket);
  CHECK(info->peer == host(2));
}

TEST_CASE("an instance that ends before ready penalises its block by outcome",
          "[policy][admission][life]") {
  auto [outcome, kind] = GENERATE(table<Outcome, PenaltyKind>({
      {Outcome::startup_timeout, PenaltyKind::grace_exceeded},
      {Outcome::killed_by_signal, PenaltyKind::crash},
      {Outcome::exited, PenaltyKind::noauth},
  }));
  GlobalConfig global;
  global.penalties =
      *usherd::policy::PenaltyConfig::parse("grace-exceeded:20s crash:30s noauth:40s min:15s");
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket({});
  ScriptedRandom never{};
  const auto peer = ip("198.51.100.9");
  auto decision = engine.admit(socket, peer, t0, never);
  REQUIRE(decision.admitted());
  const auto released = engine.release(*decision.instance, outcome, t0 + 5s);
  CHECK(released.found);
  CHECK_FALSE(released.was_ready);
  REQUIRE(released.penalty);
  CHECK(*released.penalty == kind);
  CHECK(released.record == usherd::policy::PenaltyRecord::active);
  const auto penalised = engine.penalised_sources(t0 + 5s);
  REQUIRE(penalised.size() == 1);
  CHECK(penalised[0].block.to_string() == "198.51.100.9/32");
  CHECK(penalised[0].reason == kind);
  CHECK(penalised[0].expiry == t0 + 5s + global.penalties.duration_for(kind));
  CHECK(reason_of(engine.admit(socket, peer, t0 + 6s, never)) == "penalty");
  CHECK(reason_of(engine.admit(socket, peer, penalised[0].expiry, never)) == "admitted");
  CHECK(engine.startups().current == 1);
}

TEST_CASE("an instance that ends after ready earns no penalty", "[policy][admission][life]") {
  auto outcome = GENERATE(Outcome::exited, Outcome::killed_by_signal, Outcome::startup_timeout);
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  auto ids = fill(engine, socket, 1);
  engine.mark_ready(ids[0], t0);
  const auto released = engine.release(ids[0], outcome, t0 + 1s);
  CHECK(released.found);
  CHECK(released.was_ready);
  CHECK_FALSE(released.penalty);
  CHECK(engine.penalised_sources(t0 + 1s).empty());
  CHECK(engine.instance_count() == 0);
  CHECK(engine.socket_stats(socket)->instances == 0);
  CHECK_FALSE(engine.release(ids[0], outcome, t0 + 1s).found);
}

TEST_CASE("exempt sources are not penalised when their instance fails",
          "[policy][admission][life]") {
  GlobalConfig global;
  global.exempt_sources = cidrs("10.0.0.0/8");
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket({});
  ScriptedRandom never{};
  auto decision = engine.admit(socket, ip("10.9.9.9"), t0, never);
  REQUIRE(decision.admitted());
  const auto released = engine.release(*decision.instance, Outcome::killed_by_signal, t0);
  CHECK_FALSE(released.penalty);
  CHECK(engine.penalised_sources(t0).empty());
}

TEST_CASE("spawn failure counts a drop and frees the slots", "[policy][admission][life]") {
  GlobalConfig global;
  global.max_startups = {1, 30, 1};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket({});
  auto ids = fill(engine, socket, 1);
  ScriptedRandom never{};
  CHECK(reason_of(engine.admit(socket, host(7), t0, never)) == "startups-full");
  CHECK(engine.spawn_failed(ids[0]));
  CHECK_FALSE(engine.spawn_failed(ids[0]));
  CHECK(engine.startups().current == 0);
  CHECK(engine.penalised_sources(t0).empty());
  const auto stats = engine.socket_stats(socket);
  CHECK(stats->dropped_for(DropReason::spawn_failed) == 1);
  CHECK(stats->dropped_for(DropReason::startups_full) == 1);
  CHECK(stats->accepted == 2);
  CHECK(stats->admitted == 1);
  CHECK(stats->instances == 0);
  CHECK(reason_of(engine.admit(socket, host(7), t0, never)) == "admitted");
}

TEST_CASE("adopted instances count without any rule applied", "[policy][admission][life]") {
  GlobalConfig global;
  global.max_startups = {2, 30, 2};
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_connections = 2;
  config.ip_address_deny = cidrs("any");
  const auto socket = engine.add_socket(config);
  const auto a = engine.adopt(socket, ip("::ffff:192.0.2.1"), false, t0);
  const auto b = engine.adopt(socket, ip("192.0.2.2"), true, t0);
  const auto c = engine.adopt(socket, ip("192.0.2.3"), false, t0);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  CHECK(engine.instance(*a)->peer == ip("192.0.2.1"));
  CHECK(engine.startups().current == 2);
  CHECK(engine.socket_stats(socket)->instances == 3);
  CHECK(engine.socket_stats(socket)->accepted == 0);
  CHECK_FALSE(engine.adopt(SocketId{999}, ip("192.0.2.9"), true, t0));
}

TEST_CASE("statistics add up: accepted is admitted plus rule drops", "[policy][admission]") {
  GlobalConfig global;
  global.max_startups = {3, 50, 6};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket({});
  SeededRandom random(7);
  for (unsigned i = 0; i < 200; ++i) {
    auto decision = engine.admit(socket, host(i), t0, random);
    if (decision.admitted() && i % 3 == 0) engine.release(*decision.instance, Outcome::exited, t0);
  }
  const auto stats = engine.socket_stats(socket);
  CHECK(stats->accepted == 200);
  CHECK(stats->accepted == stats->admitted + stats->dropped_total());
  CHECK(stats->dropped_for(DropReason::startups_full) > 0);
  CHECK(stats->dropped_for(DropReason::startups_early_drop) > 0);
  CHECK(engine.startups().current == 6);
  CHECK(engine.startups().peak == 6);
  CHECK(engine.startups().configured == global.max_startups);
}

TEST_CASE("reconfiguring keeps live counts and applies the new limits",
          "[policy][admission][reload]") {
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  auto ids = fill(engine, socket, 5);
  GlobalConfig tighter;
  tighter.max_startups = {3, 30, 3};
  engine.reconfigure(tighter);
  CHECK(engine.startups().current == 5);
  CHECK(engine.startups().configured.to_string() == "3:30:3");
  ScriptedRandom never{};
  CHECK(reason_of(engine.admit(socket, host(50), t0, never)) == "startups-full");
  for (unsigned i = 0; i < 3; ++i) engine.mark_ready(ids[i], t0);
  CHECK(reason_of(engine.admit(socket, host(51), t0, never)) == "admitted");
}

TEST_CASE("updating a socket keeps its counters", "[policy][admission][reload]") {
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  fill(engine, socket, 3);
  SocketConfig smaller;
  smaller.max_connections = 3;
  REQUIRE(engine.update_socket(socket, smaller));
  const auto stats = engine.socket_stats(socket);
  CHECK(stats->instances == 3);
  CHECK(stats->accepted == 3);
  ScriptedRandom never{};
  CHECK(reason_of(engine.admit(socket, host(9), t0, never)) == "max-connections");
  CHECK_FALSE(engine.update_socket(SocketId{4242}, smaller));
}

TEST_CASE("a removed socket's instances count globally until released",
          "[policy][admission][reload]") {
  GlobalConfig global;
  global.max_startups = {3, 30, 3};
  AdmissionEngine engine(global);
  const auto old_socket = engine.add_socket({});
  const auto new_socket = engine.add_socket({});
  auto ids = fill(engine, old_socket, 3);
  REQUIRE(engine.remove_socket(old_socket));
  CHECK_FALSE(engine.has_socket(old_socket));
  CHECK_FALSE(engine.remove_socket(old_socket));
  CHECK_FALSE(engine.update_socket(old_socket, {}));
  ScriptedRandom never{};
  CHECK_THROWS_AS(engine.admit(old_socket, host(1), t0, never), std::out_of_range);
  CHECK(engine.socket_stats(old_socket)->instances == 3);
  CHECK(reason_of(engine.admit(new_socket, host(10), t0, never)) == "startups-full");
  engine.mark_ready(ids[0], t0);
  engine.release(ids[0], Outcome::exited, t0);
  engine.release(ids[1], Outcome::exited, t0 + 1s);
  CHECK(engine.socket_stats(old_socket));
  engine.spawn_failed(ids[2]);
  CHECK_FALSE(engine.socket_stats(old_socket));  // forgotten with its last instance
  CHECK(engine.startups().current == 0);
  CHECK(reason_of(engine.admit(new_socket, host(11), t0 + 2s, never)) == "admitted");
}

TEST_CASE("a changed block size keeps per-block counts consistent", "[policy][admission][reload]") {
  GlobalConfig global;
  global.per_source_max_startups = 1;
  global.net_block_size = {24, 128};
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket({});
  ScriptedRandom never{};
  auto first = engine.admit(socket, ip("192.0.2.1"), t0, never);
  REQUIRE(first.admitted());
  global.net_block_size = {32, 128};
  engine.reconfigure(global);
  CHECK(reason_of(engine.admit(socket, ip("192.0.2.2"), t0, never)) == "admitted");
  engine.release(*first.instance, Outcome::exited, t0);
  CHECK(engine.tracked_startup_blocks() == 1);
}

TEST_CASE("unknown socket ids are refused as a programming error", "[policy][admission]") {
  AdmissionEngine engine;
  ScriptedRandom never{};
  CHECK_THROWS_AS(engine.admit(SocketId{77}, ip("192.0.2.1"), t0, never), std::out_of_range);
  CHECK_FALSE(engine.socket_stats(SocketId{77}));
  CHECK_FALSE(engine.mark_ready(InstanceId{77}, t0));
}

TEST_CASE("MaxConnections=4294967295 with ReservedStartups= does not wrap around",
          "[policy][admission][exempt]") {
  GlobalConfig global;
  global.exempt_sources = cidrs("10.0.0.0/8");
  global.reserved_startups = 2;
  global.max_startups = *MaxStartups::parse("4");
  AdmissionEngine engine(global);
  SocketConfig config;
  config.max_connections = 4294967295u;
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  // The admin is admitted (and into the reserved slots above full), never refused as if the
  // limit were limit + reserve modulo 2^32 = 1.
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.1"), t0, never)) == "admitted");
  fill(engine, socket, 3);
  CHECK(reason_of(engine.admit(socket, host(99), t0, never)) == "startups-full");
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.2"), t0, never)) == "admitted");
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.3"), t0, never)) == "admitted");
  CHECK(reason_of(engine.admit(socket, ip("10.0.0.4"), t0, never)) == "startups-full");
}

TEST_CASE("IP rules do not apply to a peer without an IP address", "[policy][admission][acl]") {
  AdmissionEngine engine;
  SocketConfig config;
  config.ip_address_deny = cidrs("any");
  config.max_connections_per_source = 1;
  const auto socket = engine.add_socket(config);
  ScriptedRandom never{};
  // AF_UNIX peers, keyed by uid as the supervisor does (100:0:UID::).
  const IpAddress uid0 = ip("100::"), uid65534 = ip("100:0:0:fffe::");
  CHECK(reason_of(engine.admit(socket, ip("192.0.2.1"), t0, never)) == "acl");
  CHECK(reason_of(engine.admit(socket, uid0, t0, never, false)) == "admitted");
  // Per-source limits still apply, per key: one local user does not use up another's.
  CHECK(reason_of(engine.admit(socket, uid0, t0, never, false)) == "per-source-connections");
  CHECK(reason_of(engine.admit(socket, uid65534, t0, never, false)) == "admitted");
}

TEST_CASE("an sshd instance's end before ready penalises as OpenSSH 10's listener",
          "[policy][admission][life]") {
  using usherd::policy::ExitStatusOutcomes;
  using usherd::policy::InstanceEnd;
  auto [end, kind] = GENERATE(table<InstanceEnd, std::optional<PenaltyKind>>({
      {InstanceEnd::exited(0), std::nullopt},
      {InstanceEnd::exited(5), PenaltyKind::authfail},
      {InstanceEnd::exited(7), PenaltyKind::invalid_user},
      {InstanceEnd::exited(255), PenaltyKind::noauth},
      {InstanceEnd::killed(9), std::nullopt},
      {InstanceEnd::killed(11), PenaltyKind::crash},
      {InstanceEnd::startup_timeout(), PenaltyKind::grace_exceeded},
  }));
  GlobalConfig global;
  global.penalties = *usherd::policy::PenaltyConfig::parse("min:0.5s authfail:1.5s");
  AdmissionEngine engine(global);
  const auto socket = engine.add_socket({});
  ScriptedRandom never{};
  const auto peer = ip("198.51.100.9");
  auto decision = engine.admit(socket, peer, t0, never);
  REQUIRE(decision.admitted());
  const auto released =
      engine.release(*decision.instance, end, ExitStatusOutcomes::openssh, t0 + 1s);
  CHECK(released.found);
  CHECK(released.penalty == kind);
  const auto penalised = engine.penalised_sources(t0 + 1s);
  CHECK(penalised.size() == (kind ? 1u : 0u));
  if (kind == PenaltyKind::authfail) {
    // Sub-second precision: refused for 1.5 s, not 1 s or 2 s.
    CHECK(reason_of(engine.admit(socket, peer, t0 + 2499ms, never)) == "penalty");
    CHECK(reason_of(engine.admit(socket, peer, t0 + 2500ms, never)) == "admitted");
  }
}

TEST_CASE("after readiness no end penalises, whatever the table", "[policy][admission][life]") {
  using usherd::policy::ExitStatusOutcomes;
  using usherd::policy::InstanceEnd;
  auto table = GENERATE(ExitStatusOutcomes::openssh, ExitStatusOutcomes::legacy);
  AdmissionEngine engine;
  const auto socket = engine.add_socket({});
  auto ids = fill(engine, socket, 1);
  engine.mark_ready(ids[0], t0);
  const auto released = engine.release(ids[0], InstanceEnd::killed(11), table, t0 + 1s);
  CHECK(released.was_ready);
  CHECK_FALSE(released.penalty);
  CHECK(engine.penalised_sources(t0 + 1s).empty());
}

TEST_CASE("a client gone before its accept is refused, counted, and its block penalised noauth",
          "[policy][admission]") {
  GlobalConfig config;
  config.penalties.min = std::chrono::seconds(2);  // two noauth seconds and the block is refused
  config.exempt_sources = cidrs("192.0.2.9/32");
  AdmissionEngine engine(config);
  const auto socket = engine.add_socket({});
  for (int i = 0; i < 3; ++i) {
    auto decision = engine.refuse_closed(socket, ip("192.0.2.1"), t0);
    CHECK(decision.reason == DropReason::peer_closed);
    CHECK_FALSE(decision.admitted());
  }
  auto stats = engine.socket_stats(socket);
  REQUIRE(stats);
  CHECK(stats->accepted == 3);
  CHECK(stats->dropped_for(DropReason::peer_closed) == 3);
  CHECK(stats->startups == 0);
  CHECK(engine.startups().current == 0);
  // Three noauth seconds are past min: the next connection from the block is refused, and
  // a gone one is refused as penalised, as the rule before names it.
  REQUIRE(engine.penalised_sources(t0).size() == 1);
  ScriptedRandom never{};
  CHECK(engine.admit(socket, ip("192.0.2.1"), t0, never).reason == DropReason::penalty);
  CHECK(engine.refuse_closed(socket, ip("192.0.2.1"), t0).reason == DropReason::penalty);
  // Neither an exempt source nor a peer without an IP address is penalised.
  for (int i = 0; i < 3; ++i) {
    (void)engine.refuse_closed(socket, ip("192.0.2.9"), t0);
    (void)engine.refuse_closed(socket, ip("100::1"), t0, false);
  }
  CHECK(engine.penalised_sources(t0).size() == 1);
  CHECK(engine.socket_stats(socket)->dropped_for(DropReason::peer_closed) == 9);
  CHECK(to_string(DropReason::peer_closed) == "peer-closed");
}

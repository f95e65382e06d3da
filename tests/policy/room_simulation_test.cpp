// The incident of issue #27 in miniature, in-process and deterministic: a herd of ssh
// clients that all authenticate (slowly), an ordinary user and an admin, in front of the
// admission engine with the waiting room and with random early drop alone.
//
// 150 herd clients from 50 addresses (three each, 127.0.4.1-50, each its own block under
// PerSourceNetBlockSize=32), each connecting again 50 ms after its login ends or is refused;
// authentication takes 1 s (the slot frees at readiness), the session 200 ms more. An ordinary
// user from 127.0.0.2 tries every 2 s (20 attempts in 40 s), an admin from ExemptSources=
// 127.0.0.9 every 4 s (10 attempts). MaxStartups=10:30:60 and ReservedStartups=2 as in the
// issue's measurement; the room has usherd.conf's defaults (MaxParked=1000,
// PerSourceMaxParked=100, MaxParkedWait=8s). An attempt succeeds when it gets a slot: at
// once, or from the room within MaxParkedWait=. Time is simulated; the random draws come from
// a seeded generator, so the figures are the same on every run.
#include "tests/catch.h"

#include <algorithm>
#include <map>
#include <queue>
#include <string>
#include <vector>

#include "policy/admission.h"
#include "random_sources.h"

using namespace std::chrono_literals;
using usherd::policy::AdmissionEngine;
using usherd::policy::Decision;
using usherd::policy::GlobalConfig;
using usherd::policy::InstanceId;
using usherd::policy::IpAddress;
using usherd::policy::MaxStartups;
using usherd::policy::RoomExit;
using usherd::policy::SocketConfig;
using usherd::policy::SocketId;
using usherd::policy::TicketId;
using usherd::policy::TimePoint;
using usherd::policy::testing::SeededRandom;

namespace {

const TimePoint t0 = TimePoint() + 100000s;
constexpr auto kAuth = 1s;
constexpr auto kSession = 200ms;
constexpr auto kRestart = 50ms;
constexpr auto kRun = 40s;
constexpr unsigned kHerd = 150;
constexpr unsigned kHerdAddresses = 50;

enum class Role { herd, user, admin };

struct Figures {
  unsigned user_attempts = 0;
  unsigned user_slots = 0;
  std::vector<double> user_waits_s;
  unsigned admin_attempts = 0;
  unsigned admin_slots = 0;
  unsigned herd_logins = 0;
  unsigned peak_startups = 0;

  double user_share() const { return user_attempts ? double(user_slots) / user_attempts : 0; }
  double user_wait_quantile(double q) const {
    if (user_waits_s.empty()) return 0;
    auto waits = user_waits_s;
    std::sort(waits.begin(), waits.end());
    return waits[std::min(waits.size() - 1, static_cast<std::size_t>(q * waits.size()))];
  }
};

class Simulation {
 public:
  explicit Simulation(bool waiting_room) : engine_(config(waiting_room)) {
    SocketConfig ssh;
    ssh.max_connections = 1000;
    socket_ = engine_.add_socket(ssh);
    for (unsigned i = 0; i < kHerd; ++i) {
      clients_.push_back({Role::herd, IpAddress::from_v4(0x7f000401u + i % kHerdAddresses)});
      schedule(t0 + std::chrono::milliseconds(2 * i), Kind::connect, i);
    }
    const unsigned user = add_client(Role::user, 0x7f000002u);
    for (unsigned k = 0; k < 20; ++k) schedule(t0 + 1s + k * 2s, Kind::connect, user);
    const unsigned admin = add_client(Role::admin, 0x7f000009u);
    for (unsigned k = 0; k < 10; ++k) schedule(t0 + 2s + k * 4s, Kind::connect, admin);
  }

  Figures run() {
    while (!events_.empty()) {
      const Event event = events_.top();
      events_.pop();
      now_ = event.at;
      switch (event.kind) {
        case Kind::connect:
          connect(event.client);
          break;
        case Kind::ready:
          engine_.mark_ready(event.instance, now_);
          schedule(now_ + kSession, Kind::end, event.client, event.instance);
          drain(engine_.next_from_room(now_));
          break;
        case Kind::end:
          engine_.release(event.instance, usherd::policy::Outcome::exited, now_);
          if (clients_[event.client].role == Role::herd) restart(event.client);
          drain(engine_.next_from_room(now_));
          break;
        case Kind::deadline:
          drain(engine_.expire(now_));
          break;
      }
      if (auto deadline = engine_.next_room_deadline(); deadline && *deadline != armed_) {
        armed_ = *deadline;
        schedule(*deadline, Kind::deadline, 0);
      }
      figures_.peak_startups = std::max(figures_.peak_startups, engine_.startups().current);
    }
    return figures_;
  }

 private:
  enum class Kind { connect, ready, end, deadline };
  struct Client {
    Role role;
    IpAddress peer;
  };
  struct Event {
    TimePoint at;
    std::uint64_t seq;
    Kind kind;
    unsigned client;
    InstanceId instance;
    bool operator>(const Event& other) const {
      return at != other.at ? at > other.at : seq > other.seq;
    }
  };

  static GlobalConfig config(bool waiting_room) {
    GlobalConfig global;
    global.max_startups = MaxStartups{10, 30, 60};
    global.reserved_startups = 2;
    global.exempt_sources = *usherd::policy::parse_cidr_list("127.0.0.9");
    global.waiting_room.enabled = waiting_room;
    global.waiting_room.max_parked = MaxStartups{1000, 30, 1000};
    global.waiting_room.per_source_max_parked = 100;
    global.waiting_room.max_wait = 8s;
    return global;
  }

  unsigned add_client(Role role, std::uint32_t address) {
    clients_.push_back({role, IpAddress::from_v4(address)});
    return static_cast<unsigned>(clients_.size() - 1);
  }

  void schedule(TimePoint at, Kind kind, unsigned client, InstanceId instance = InstanceId{}) {
    events_.push({at, seq_++, kind, client, instance});
  }

  void restart(unsigned client) {
    if (now_ + kRestart < t0 + kRun) schedule(now_ + kRestart, Kind::connect, client);
  }

  void count_attempt(Role role) {
    if (role == Role::user) ++figures_.user_attempts;
    if (role == Role::admin) ++figures_.admin_attempts;
  }

  void got_slot(unsigned client, InstanceId instance, std::chrono::microseconds waited) {
    const Role role = clients_[client].role;
    if (role == Role::user) {
      ++figures_.user_slots;
      figures_.user_waits_s.push_back(std::chrono::duration<double>(waited).count());
    }
    if (role == Role::admin) ++figures_.admin_slots;
    if (role == Role::herd) ++figures_.herd_logins;
    schedule(now_ + kAuth, Kind::ready, client, instance);
  }

  void refused(unsigned client) {
    if (clients_[client].role == Role::herd) restart(client);
  }

  void connect(unsigned client) {
    count_attempt(clients_[client].role);
    const Decision d = engine_.admit(socket_, clients_[client].peer, now_, random_);
    if (d.pushed_out) drain({*d.pushed_out});
    if (d.admitted()) {
      got_slot(client, *d.instance, {});
    } else if (d.is_parked()) {
      waiting_[*d.ticket] = client;
    } else {
      refused(client);
    }
  }

  void drain(const std::vector<RoomExit>& exits) {
    for (const RoomExit& e : exits) {
      auto it = waiting_.find(e.ticket);
      if (it == waiting_.end()) FAIL("a ticket left the room that was never parked");
      const unsigned client = it->second;
      waiting_.erase(it);
      if (e.started())
        got_slot(client, *e.instance, e.waited);
      else
        refused(client);
    }
  }

  AdmissionEngine engine_;
  SocketId socket_{};
  SeededRandom random_{27};
  std::vector<Client> clients_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::map<TicketId, unsigned> waiting_;
  std::uint64_t seq_ = 0;
  TimePoint now_ = t0;
  TimePoint armed_{};
  Figures figures_;
};

}  // namespace

TEST_CASE("in #27's herd the room gives the ordinary user a slot where early drop refuses",
          "[policy][admission][room][simulation]") {
  const Figures room = Simulation(true).run();
  const Figures early = Simulation(false).run();
  INFO("room: user " << room.user_slots << "/" << room.user_attempts << " p50 "
                     << room.user_wait_quantile(0.5) << " s p99 " << room.user_wait_quantile(0.99)
                     << " s, admin " << room.admin_slots << "/" << room.admin_attempts
                     << ", herd logins " << room.herd_logins << ", peak startups "
                     << room.peak_startups);
  INFO("early drop: user " << early.user_slots << "/" << early.user_attempts << ", admin "
                           << early.admin_slots << "/" << early.admin_attempts << ", herd logins "
                           << early.herd_logins << ", peak startups " << early.peak_startups);
  REQUIRE(room.user_attempts == 20);
  REQUIRE(early.user_attempts == 20);
  CHECK(room.user_share() >= 0.95);
  CHECK(room.user_wait_quantile(0.99) < 8.0);
  CHECK(early.user_share() < room.user_share());
  CHECK(early.user_share() <= 0.5);
  // The admin keeps its reserved slots either way; nobody else goes past full.
  CHECK(room.admin_slots == room.admin_attempts);
  CHECK(early.admin_slots == early.admin_attempts);
  CHECK(room.peak_startups <= 60 + 2);
  CHECK(early.peak_startups <= 60 + 2);
  // The room does not cost the herd its logins: slots stay busy.
  CHECK(room.herd_logins >= early.herd_logins);
}

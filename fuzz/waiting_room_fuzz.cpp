// libFuzzer entry for the admission engine's waiting room: the input's first bytes choose a
// configuration (MaxStartups= full, ReservedStartups=, MaxParked=, PerSourceMaxParked=,
// MaxParkedWait=, PerSourceMaxStartups=, PerSourceNetBlockSize=, one socket's X-MaxStartups=
// and MaxConnections=), the rest a sequence of events: arrivals from a handful of sources
// (one exempt), readiness, ends, failed spawns, hang-ups of parked clients, time passing,
// next_from_room() and expire(). Whatever the sequence, the room must keep its promises:
//   - non-exempt startups never exceed full, and all startups never exceed full + reserve;
//   - the room never holds more than MaxParked='s full, nor a block more than its share;
//   - a ticket leaves the room once, and a started one waited no longer than MaxParkedWait=;
//   - accepted = admitted + dropped + parked + abandoned (failed spawns aside);
//   - when every client hangs up and every instance ends, nothing is left.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "policy/admission.h"

using namespace usherd;

namespace {

void claim(bool condition) {
  if (!condition) std::abort();
}

/// Bytes of the input, then zeros.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t next() { return at_ < size_ ? data_[at_++] : 0; }
  bool done() const { return at_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

/// Draws from the input too, so the early-drop branches are reachable.
class InputRandom : public policy::RandomSource {
 public:
  explicit InputRandom(Bytes& bytes) : bytes_(bytes) {}
  std::uint32_t uniform(std::uint32_t bound) override { return bytes_.next() % bound; }

 private:
  Bytes& bytes_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono_literals;
  Bytes in(data, size);
  policy::GlobalConfig global;
  const unsigned full = 1 + in.next() % 8;
  global.max_startups = policy::MaxStartups{full, 30, full};
  global.reserved_startups = in.next() % 3;
  global.exempt_sources = *policy::parse_cidr_list("10.9.9.9");
  global.waiting_room.enabled = true;
  const unsigned parked_full = 1 + in.next() % 12;
  const unsigned parked_start = 1 + in.next() % parked_full;
  global.waiting_room.max_parked =
      policy::MaxStartups{parked_start, 1 + in.next() % 100u, parked_full};
  if (const unsigned share = in.next() % 5)
    global.waiting_room.per_source_max_parked = share;
  else
    global.waiting_room.per_source_max_parked.reset();
  global.waiting_room.max_wait = std::chrono::milliseconds(1 + in.next() * 50);
  if (const unsigned per_source = in.next() % 4) global.per_source_max_startups = per_source;
  global.net_block_size = {in.next() % 2 ? 24u : 32u, 128};
  policy::SocketConfig socket;
  socket.max_connections = 1 + in.next() % 16;
  if (const unsigned own = in.next() % 6) socket.max_startups = policy::MaxStartups{own, 30, own};
  policy::AdmissionEngine engine(global);
  const policy::SocketId id = engine.add_socket(socket);
  InputRandom random(in);

  static const char* const kPeers[] = {"192.0.2.1",    "192.0.2.2",   "192.0.2.3",
                                       "198.51.100.7", "2001:db8::1", "10.9.9.9"};
  std::vector<policy::IpAddress> peers;
  for (const char* text : kPeers) peers.push_back(*policy::IpAddress::parse(text));

  policy::TimePoint now{};
  std::vector<policy::InstanceId> live;
  std::set<policy::TicketId> parked;
  std::uint64_t spawn_failures = 0;
  auto leave = [&](const std::vector<policy::RoomExit>& exits) {
    for (const auto& e : exits) {
      claim(parked.erase(e.ticket) == 1);
      claim(e.started() != e.reason.has_value());
      if (e.started()) {
        claim(e.waited <= global.waiting_room.max_wait);
        live.push_back(*e.instance);
      }
    }
  };
  while (!in.done()) {
    const unsigned op = in.next() % 8;
    if (op <= 2 || live.empty()) {
      const auto& peer = peers[in.next() % peers.size()];
      const policy::Decision d = engine.admit(id, peer, now, random);
      claim(d.admitted() + d.is_parked() + d.reason.has_value() == 1);
      if (d.pushed_out) leave({*d.pushed_out});
      if (d.admitted()) live.push_back(*d.instance);
      if (d.is_parked()) parked.insert(*d.ticket);
    } else if (op == 3) {
      (void)engine.mark_ready(live[in.next() % live.size()], now);
    } else if (op == 4) {
      const std::size_t pick = in.next() % live.size();
      claim(engine.release(live[pick], policy::Outcome::exited, now).found);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
    } else if (op == 5) {
      const std::size_t pick = in.next() % live.size();
      claim(engine.spawn_failed(live[pick]));
      ++spawn_failures;
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
    } else if (op == 6 && !parked.empty()) {
      auto it = parked.begin();
      std::advance(it, in.next() % parked.size());
      claim(engine.cancel(*it));
      parked.erase(it);
    } else {
      now += std::chrono::milliseconds(in.next() * 40);
      leave(in.next() % 2 ? engine.next_from_room(now) : engine.expire(now));
    }
    const auto room = engine.room_stats();
    claim(room.parked == parked.size());
    claim(room.parked <= parked_full);
    if (global.waiting_room.per_source_max_parked) {
      for (const auto& block : engine.parked_blocks())
        claim(block.parked <= *global.waiting_room.per_source_max_parked);
    }
    claim(engine.startups().current <= full + global.reserved_startups);
    const auto stats = *engine.socket_stats(id);
    claim(stats.instances <= socket.max_connections + global.reserved_startups);
    claim(stats.accepted + spawn_failures ==
          stats.admitted + stats.dropped_total() + stats.parked + stats.abandoned);
  }
  for (policy::TicketId ticket : parked) claim(engine.cancel(ticket));
  for (policy::InstanceId instance : live)
    claim(engine.release(instance, policy::Outcome::exited, now).found);
  claim(engine.room_stats().parked == 0);
  claim(!engine.next_room_deadline());
  claim(engine.startups().current == 0);
  claim(engine.instance_count() == 0);
  claim(engine.tracked_startup_blocks() == 0);
  return 0;
}

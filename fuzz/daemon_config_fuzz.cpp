// libFuzzer entry for usherd.conf: arbitrary bytes parsed as the daemon's configuration. When
// the file is accepted, the admission engine is built from it exactly as the daemon does
// (to_admission_config) and driven through 64 steps of admissions, readiness events and
// releases from a handful of sources, in an order drawn from the input itself. Whatever the
// file says, the budget must hold:
//   - a connection not in ExemptSources= is admitted only while startups < full;
//   - startups never exceed full + ReservedStartups=;
//   - when every instance is released, no startup and no instance is left.
// A refused file must come with an error diagnostic naming the file. Any crash,
// sanitizer report or broken claim is a bug.
// fuzz-link: usherd_supervisor
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <set>

#include "policy/admission.h"
#include "supervisor/convert.h"
#include "units/daemon_config.h"

using namespace usherd;

namespace {

void claim(bool condition) {
  if (!condition) std::abort();
}

/// A RandomSource over a generator seeded from the input, so every run of an input is the same.
class SeededRandom : public policy::RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed) : rng_(seed) {}
  std::uint32_t uniform(std::uint32_t bound) override {
    return std::uniform_int_distribution<std::uint32_t>(0, bound - 1)(rng_);
  }
  std::mt19937_64& engine() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

void drive(const units::DaemonConfig& config, std::uint64_t seed) {
  policy::GlobalConfig global = supervisor::to_admission_config(config);
  policy::AdmissionEngine engine(global);
  policy::SocketConfig socket;
  socket.max_connections = 100000;
  policy::SocketId id = engine.add_socket(socket);

  // Sources an exempt list, a penalty list or a block size is likely to name.
  static const std::vector<policy::IpAddress> peers = [] {
    std::vector<policy::IpAddress> out;
    for (const char* text : {"127.0.0.1", "127.0.0.2", "127.0.0.9", "10.0.0.1", "10.0.1.1",
                             "192.0.2.7", "::1", "2001:db8::1", "2001:db8:1::1", "::ffff:10.0.0.1"})
      out.push_back(*policy::IpAddress::parse(text));
    return out;
  }();

  SeededRandom random(seed);
  auto& rng = random.engine();
  policy::TimePoint now{};
  std::vector<policy::InstanceId> live;
  std::set<std::uint64_t> parked;  // tickets in the waiting room (WaitingRoom=yes)
  // The supervisor's side of the room's contract: served whenever a slot may have freed.
  auto serve = [&] {
    for (const policy::RoomExit& exit : engine.next_from_room(now)) {
      claim(parked.erase(static_cast<std::uint64_t>(exit.ticket)) == 1);
      if (exit.started())
        live.push_back(*exit.instance);
      else
        claim(exit.reason.has_value());
    }
  };
  const unsigned full = global.max_startups.full;
  const unsigned ceiling = full + global.reserved_startups;
  for (int step = 0; step < 64; ++step) {
    unsigned op = static_cast<unsigned>(rng() % 8);
    if (op < 5 || live.empty()) {
      const policy::IpAddress& peer = peers[rng() % peers.size()];
      unsigned before = engine.startups().current;
      policy::Decision d = engine.admit(id, peer, now, random);
      claim(d.startups == before);
      if (d.pushed_out) claim(parked.erase(static_cast<std::uint64_t>(d.pushed_out->ticket)) == 1);
      if (d.admitted()) {
        claim(d.exempt || before < full);
        live.push_back(*d.instance);
      } else if (d.is_parked()) {
        parked.insert(static_cast<std::uint64_t>(*d.ticket));
      } else {
        claim(d.reason.has_value());
      }
    } else {
      std::size_t pick = rng() % live.size();
      policy::InstanceId instance = live[pick];
      if (op == 5) {
        (void)engine.mark_ready(instance, now);
      } else {
        auto outcome = static_cast<policy::Outcome>(rng() % 3);
        claim(engine.release(instance, outcome, now).found);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
      }
      serve();
    }
    claim(engine.startups().current <= ceiling);
    claim(engine.startups().peak <= ceiling);
    claim(engine.instance_count() == live.size());
    now += std::chrono::milliseconds(rng() % 5000);
    (void)engine.penalised_sources(now);
  }
  for (std::uint64_t ticket : parked) claim(engine.cancel(policy::TicketId{ticket}));
  for (policy::InstanceId instance : live)
    claim(engine.release(instance, policy::Outcome::exited, now).found);
  claim(engine.startups().current == 0);
  claim(engine.instance_count() == 0);
  claim(engine.tracked_startup_blocks() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<units::Diagnostic> diagnostics;
  units::DaemonConfigResult result = units::parse_daemon_config(text, "usherd.conf", diagnostics);
  for (const auto& d : diagnostics) {
    std::string line = d.to_string();
    claim(line.rfind("usherd.conf:", 0) == 0);
  }
  if (!result.ok) {
    bool named = false;
    for (const auto& d : diagnostics) named |= d.severity == units::Diagnostic::Severity::error;
    claim(named);
    return 0;
  }
  const auto& ms = result.config.max_startups;
  claim(ms.start > 0 && ms.start <= ms.full && ms.rate >= 1 && ms.rate <= 100);
  drive(result.config, std::hash<std::string_view>{}(text));
  return 0;
}

// Translations between the layers: unit configuration -> listener specs and policy configs,
// accepted addresses -> policy addresses, systemd's instance names. The supervisor is the
// only place that knows all three vocabularies, so the glue lives here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "activation/accept.h"
#include "activation/listener.h"
#include "activation/socket_address.h"
#include "policy/admission.h"
#include "policy/random_source.h"
#include "units/config.h"

namespace usherd::supervisor {

/// The listener spec for one Listen*= address of a socket unit (SocketUser=/Group= resolved).
activation::ListenSpec to_listen_spec(const units::SocketUnit& unit,
                                      const units::ListenAddress& address);
/// Identity of a listener for reloads: equal keys may keep their fd.
std::string listen_key(const activation::ListenSpec& spec);
/// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
int socket_type(const activation::ListenSpec& spec);

/// The policy's view of a peer: its IP (IPv4-mapped already unmapped by accept), or ::
/// for AF_UNIX peers, which no IP rule matches by accident.
policy::IpAddress to_policy_address(const activation::SocketAddress& address);

/// The admission key of an AF_UNIX peer: its uid (SO_PEERCRED on fd) inside the discard-only
/// prefix 100::/64 (RFC 6666), as 100:0:UUUU:UUUU::, so that penalties and per-source limits
/// fall on one local user and not on every other, whatever the v6 PerSourceNetBlockSize= down
/// to /64. No IP rule names that prefix by accident (and admit() skips them for such peers).
policy::IpAddress unix_peer_address(int fd);

/// The policy's global configuration from usherd.conf.
policy::GlobalConfig to_admission_config(const units::DaemonConfig& config);
/// The policy's view of one socket unit.
policy::SocketConfig to_socket_policy(const units::SocketUnit& unit);

/// systemd's per-connection unit name: "ssh@" + counter + "-" + part + ".service", from the
/// template name "ssh@.service".
std::string instance_name(const std::string& template_name, std::uint64_t counter,
                          const std::string& part);

/// A listening socket passed to usherd by its own manager (LISTEN_FDS), matching spec by
/// FileDescriptorName= or by address; consumed once. Empty when none matches.
std::optional<activation::Listener> take_inherited_listener(const activation::ListenSpec& spec,
                                                            const units::SocketUnit& unit);
/// Takes the LISTEN_FDS passed to usherd at start (sd_listen_fds) into the pool above.
/// Returns how many there were.
int collect_inherited_listeners();

/// OpenSSH's arc4random_uniform over the daemon's generator.
class RandomAdapter : public policy::RandomSource {
 public:
  explicit RandomAdapter(std::mt19937_64& rng) : rng_(rng) {}
  std::uint32_t uniform(std::uint32_t bound) override {
    return static_cast<std::uint32_t>(
        std::uniform_int_distribution<std::uint32_t>(0, bound - 1)(rng_));
  }

 private:
  std::mt19937_64& rng_;
};

/// A unit's time span as a timer's: "infinity" (units::kInfiniteDuration) and anything past
/// what the steady clock can hold become its maximum, which Asio's timers never reach. A
/// plain duration_cast of it to nanoseconds would overflow into a negative span that fires
/// at once.
inline std::chrono::steady_clock::duration to_timer_duration(units::Duration d) {
  using Target = std::chrono::steady_clock::duration;
  if (d >= std::chrono::duration_cast<units::Duration>(Target::max())) return Target::max();
  return std::chrono::duration_cast<Target>(d);
}

}  // namespace usherd::supervisor

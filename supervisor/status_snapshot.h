// What operators see, as one value: usherd's state at one moment, taken by the daemon from
// the components that own each part (StatusSnapshot), and the renderings of it — the status
// JSON and text of `usherctl status`, the instance list of `usherctl list`, and the
// Prometheus metrics. Rendering is pure, so each output has a golden test.
//
// The JSON fields and metric names are interfaces other tools rely on (DESIGN.md): a new
// field may be added, none renamed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "policy/admission.h"
#include "supervisor/histogram.h"

namespace usherd::supervisor {

struct SocketSnapshot {
  std::string name;
  std::string service;
  std::vector<std::string> listen;  ///< each listener's bound address
  bool accept = false;
  bool held = false;  ///< some listener waits for children still before their execve
  policy::SocketStats stats;
  std::optional<std::string> service_state;  ///< Accept=no: the service's phase
  Histogram startup_seconds;
};

struct InstanceSnapshot {
  std::string id;
  std::string socket;
  std::string service;
  pid_t pid = 0;
  std::string peer;   ///< "" for none (an Accept=no service)
  std::string state;  ///< "starting", "running", "stopping"
  std::optional<std::string> ready_via;
  double age_s = 0;
  bool adopted = false;
};

struct StatusSnapshot {
  policy::StartupsStats startups;
  policy::MaxStartups limits;
  std::size_t penalised_sources = 0;
  double uptime_s = 0;
  pid_t pid = 0;
  std::uint64_t reloads = 0;
  std::uint64_t notify_rejected = 0;
  std::uint64_t startups_unknown = 0;
  std::uint64_t startups_reclaimed = 0;
  std::uint64_t startup_timeouts = 0;
  std::uint64_t spawn_failures = 0;
  std::size_t launches_stalled = 0;
  std::uint64_t control_answered = 0;
  std::uint64_t control_refused = 0;
  std::string metrics_listen;  ///< "" when there is no HTTP /metrics
  Histogram spawn_seconds;
  policy::RoomStats room;  ///< the waiting room
  /// Source blocks with parked connections, most parked first.
  std::vector<policy::ParkedBlock> parked_blocks;
  Histogram room_wait_seconds;  ///< how long started connections waited in the room
  std::vector<SocketSnapshot> sockets;
  /// Instances and service main processes (not ExecStartPre= and similar commands).
  std::vector<InstanceSnapshot> instances;
  /// Every process usherd tracks, commands included (the "N instances" of the title).
  std::size_t tracked = 0;
};

/// `usherctl status --json`.
boost::json::object render_status_json(const StatusSnapshot& snapshot);
/// `usherctl list --json`.
boost::json::object render_list_json(const StatusSnapshot& snapshot);
/// `usherctl status` and the SIGUSR1 dump.
std::string render_status_text(const StatusSnapshot& snapshot);
/// Prometheus text exposition (`usherctl metrics`, HTTP /metrics).
std::string render_metrics(const StatusSnapshot& snapshot);

}  // namespace usherd::supervisor

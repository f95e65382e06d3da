#include "supervisor/status_snapshot.h"

#include <map>
#include <utility>

#include <fmt/format.h>

namespace usherd::supervisor {
namespace {

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string_view drop_reason_name(std::size_t i) {
  return policy::to_string(static_cast<policy::DropReason>(i));
}

/// Source blocks listed by name in status (the busiest first); the rest are counted.
constexpr std::size_t kParkedBlocksShown = 16;

}  // namespace

boost::json::object render_list_json(const StatusSnapshot& snapshot) {
  boost::json::array list;
  for (const auto& inst : snapshot.instances) {
    boost::json::object o;
    o["id"] = inst.id;
    o["socket"] = inst.socket;
    o["service"] = inst.service;
    o["pid"] = inst.pid;
    o["peer"] = inst.peer.empty() ? boost::json::value(nullptr) : boost::json::value(inst.peer);
    o["state"] = inst.state;
    o["ready_via"] =
        inst.ready_via ? boost::json::value(*inst.ready_via) : boost::json::value(nullptr);
    o["age_s"] = inst.age_s;
    o["adopted"] = inst.adopted;
    list.push_back(std::move(o));
  }
  boost::json::object out;
  out["instances"] = list;
  return out;
}

boost::json::object render_status_json(const StatusSnapshot& snapshot) {
  boost::json::object out;
  out["version"] = 1;
  const auto& ms = snapshot.limits;
  boost::json::object startups;
  startups["current"] = snapshot.startups.current;
  startups["peak"] = snapshot.startups.peak;
  startups["start"] = ms.start;
  startups["rate"] = ms.rate;
  startups["full"] = ms.full;
  out["startups"] = startups;
  out["penalised_sources"] = snapshot.penalised_sources;
  out["uptime_s"] = snapshot.uptime_s;
  out["pid"] = static_cast<std::int64_t>(snapshot.pid);
  out["reloads"] = snapshot.reloads;
  out["notify_rejected"] = snapshot.notify_rejected;
  out["startups_unknown"] = snapshot.startups_unknown;
  out["startups_reclaimed"] = snapshot.startups_reclaimed;
  out["launches_stalled"] = snapshot.launches_stalled;
  boost::json::object control;
  control["answered"] = snapshot.control_answered;
  control["refused"] = snapshot.control_refused;
  out["control_requests"] = control;
  if (!snapshot.metrics_listen.empty()) out["metrics_listen"] = snapshot.metrics_listen;
  const policy::RoomStats& room = snapshot.room;
  boost::json::object waiting;
  waiting["enabled"] = room.enabled;
  waiting["parked"] = room.parked;
  waiting["peak"] = room.peak;
  waiting["blocks"] = room.blocks;
  waiting["started"] = room.started;
  waiting["longest_wait_s"] = std::chrono::duration<double>(room.waited_max).count();
  waiting["max_wait_s"] = std::chrono::duration<double>(room.max_wait).count();
  waiting["max_parked"] = room.configured.to_string();
  boost::json::array blocks;
  for (std::size_t i = 0; i < snapshot.parked_blocks.size() && i < kParkedBlocksShown; ++i) {
    boost::json::object b;
    b["block"] = snapshot.parked_blocks[i].block.to_string();
    b["parked"] = snapshot.parked_blocks[i].parked;
    blocks.push_back(std::move(b));
  }
  waiting["by_block"] = blocks;
  out["waiting_room"] = waiting;
  boost::json::array sockets;
  for (const auto& s : snapshot.sockets) {
    boost::json::object so;
    so["name"] = s.name;
    so["service"] = s.service;
    boost::json::array listen;
    for (const auto& l : s.listen) listen.emplace_back(l);
    so["listen"] = listen;
    so["accept"] = s.accept;
    so["held"] = s.held;
    so["accepted"] = s.stats.accepted;
    so["admitted"] = s.stats.admitted;
    boost::json::object dropped;
    for (std::size_t i = 0; i < policy::kDropReasonCount; ++i)
      if (s.stats.dropped[i] > 0) dropped[drop_reason_name(i)] = s.stats.dropped[i];
    so["dropped"] = dropped;
    so["startups"] = s.stats.startups;
    so["instances"] = s.stats.instances;
    so["parked"] = s.stats.parked;
    so["abandoned"] = s.stats.abandoned;
    if (s.service_state) so["service_state"] = *s.service_state;
    sockets.push_back(std::move(so));
  }
  out["sockets"] = sockets;
  out["instances"] = render_list_json(snapshot)["instances"];
  return out;
}

std::string render_status_text(const StatusSnapshot& snapshot) {
  std::string out =
      fmt::format("usherd: startups {} of {} (peak {}), {} instances, {} penalised sources\n",
                  snapshot.startups.current, snapshot.limits.to_string(), snapshot.startups.peak,
                  snapshot.tracked, snapshot.penalised_sources);
  if (snapshot.room.enabled || snapshot.room.parked > 0) {
    const policy::RoomStats& room = snapshot.room;
    out += fmt::format(
        "waiting room: {} parked (peak {}) from {} source blocks, {} started, longest wait "
        "{:.1f}s of {:.1f}s\n",
        room.parked, room.peak, room.blocks, room.started,
        std::chrono::duration<double>(room.waited_max).count(),
        std::chrono::duration<double>(room.max_wait).count());
    for (std::size_t i = 0; i < snapshot.parked_blocks.size() && i < kParkedBlocksShown; ++i)
      out += fmt::format("    {} parked from {}\n", snapshot.parked_blocks[i].parked,
                         snapshot.parked_blocks[i].block.to_string());
  }
  for (const auto& s : snapshot.sockets) {
    const policy::SocketStats& st = s.stats;
    out += fmt::format("* {} -> {} (accept={})\n    listen: {}{}\n", s.name, s.service,
                       s.accept ? "yes" : "no", fmt::join(s.listen, " "),
                       s.held ? " (held: children still before execve)" : "");
    std::string drops;
    for (std::size_t i = 0; i < policy::kDropReasonCount; ++i)
      if (st.dropped[i] > 0) drops += fmt::format(" {}={}", drop_reason_name(i), st.dropped[i]);
    out += fmt::format("    accepted {}, admitted {}, dropped {}{}\n", st.accepted, st.admitted,
                       st.dropped_total(), drops.empty() ? "" : " (" + drops.substr(1) + ")");
    out += fmt::format("    startups {}, instances {}\n", st.startups, st.instances);
    if (st.parked > 0 || st.parked_total > 0)
      out += fmt::format("    parked {} now, {} in all, {} hung up while waiting\n", st.parked,
                         st.parked_total, st.abandoned);
  }
  return out;
}

std::string render_metrics(const StatusSnapshot& snapshot) {
  std::string out;
  const auto& ms = snapshot.limits;
  auto help = [&out](std::string_view name, std::string_view type, std::string_view text) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, text, name, type);
  };
  help("usherd_startups", "gauge", "Instances that have not signalled readiness yet, all sockets.");
  out += fmt::format("usherd_startups {}\n", snapshot.startups.current);
  help("usherd_startups_peak", "gauge", "High-water mark of usherd_startups since start.");
  out += fmt::format("usherd_startups_peak {}\n", snapshot.startups.peak);
  help("usherd_startups_limit", "gauge", "The global MaxStartups bounds.");
  out += fmt::format("usherd_startups_limit{{bound=\"start\"}} {}\n", ms.start);
  out += fmt::format("usherd_startups_limit{{bound=\"full\"}} {}\n", ms.full);
  help("usherd_connections_total", "counter", "Connections accepted, by socket and result.");
  for (const auto& s : snapshot.sockets) {
    std::string sock = escape_label(s.name);
    out += fmt::format("usherd_connections_total{{socket=\"{}\",result=\"admitted\"}} {}\n", sock,
                       s.stats.admitted);
    out += fmt::format("usherd_connections_total{{socket=\"{}\",result=\"dropped\"}} {}\n", sock,
                       s.stats.dropped_total());
  }
  help("usherd_drops_total", "counter", "Connections dropped, by socket and reason.");
  for (const auto& s : snapshot.sockets)
    for (std::size_t i = 0; i < policy::kDropReasonCount; ++i)
      out += fmt::format("usherd_drops_total{{socket=\"{}\",reason=\"{}\"}} {}\n",
                         escape_label(s.name), drop_reason_name(i), s.stats.dropped[i]);
  help("usherd_instances", "gauge", "Live instances, by socket and state.");
  std::map<std::pair<std::string, std::string>, unsigned> by_state;
  for (const auto& s : snapshot.sockets)
    for (const char* st : {"starting", "running", "stopping"}) by_state[{s.name, st}] = 0;
  for (const auto& inst : snapshot.instances) ++by_state[{inst.socket, inst.state}];
  for (const auto& [k, n] : by_state)
    out += fmt::format("usherd_instances{{socket=\"{}\",state=\"{}\"}} {}\n", escape_label(k.first),
                       k.second, n);
  help("usherd_startup_duration_seconds", "histogram", "Time from accept to readiness.");
  for (const auto& s : snapshot.sockets)
    s.startup_seconds.render(out, "usherd_startup_duration_seconds",
                             fmt::format("socket=\"{}\"", escape_label(s.name)));
  help("usherd_startups_unknown_total", "counter",
       "Adopted instances whose readiness channel was lost in a restart: startup ended as "
       "unknown.");
  out += fmt::format("usherd_startups_unknown_total {}\n", snapshot.startups_unknown);
  help("usherd_startup_timeouts_total", "counter", "Instances stopped by the startup timeout.");
  out += fmt::format("usherd_startup_timeouts_total {}\n", snapshot.startup_timeouts);
  help("usherd_startups_reclaimed_total", "counter",
       "Startups ended as stalled (ReclaimStalledSec=) while connections waited.");
  out += fmt::format("usherd_startups_reclaimed_total {}\n", snapshot.startups_reclaimed);
  help("usherd_socket_held", "gauge", "Whether a socket's listeners wait for starting children.");
  for (const auto& s : snapshot.sockets)
    out += fmt::format("usherd_socket_held{{socket=\"{}\"}} {}\n", escape_label(s.name),
                       s.held ? 1 : 0);
  help("usherd_launches_stalled", "gauge",
       "Children launched over 250 ms ago still before execve.");
  out += fmt::format("usherd_launches_stalled {}\n", snapshot.launches_stalled);
  help("usherd_spawn_failures_total", "counter", "Instances that could not be started.");
  out += fmt::format("usherd_spawn_failures_total {}\n", snapshot.spawn_failures);
  help("usherd_spawn_duration_seconds", "histogram", "Time from accept to a successful exec.");
  snapshot.spawn_seconds.render(out, "usherd_spawn_duration_seconds", "");
  help("usherd_penalised_sources", "gauge", "Source blocks serving a penalty now.");
  out += fmt::format("usherd_penalised_sources {}\n", snapshot.penalised_sources);
  help("usherd_notify_rejected_total", "counter",
       "Notify datagrams not attributable to an instance.");
  out += fmt::format("usherd_notify_rejected_total {}\n", snapshot.notify_rejected);
  help("usherd_parked", "gauge", "Connections in the waiting room, by socket.");
  for (const auto& s : snapshot.sockets)
    out += fmt::format("usherd_parked{{socket=\"{}\"}} {}\n", escape_label(s.name), s.stats.parked);
  help("usherd_parked_peak", "gauge", "High-water mark of connections in the waiting room.");
  out += fmt::format("usherd_parked_peak {}\n", snapshot.room.peak);
  help("usherd_parked_abandoned_total", "counter",
       "Parked connections whose client hung up while waiting, by socket.");
  for (const auto& s : snapshot.sockets)
    out += fmt::format("usherd_parked_abandoned_total{{socket=\"{}\"}} {}\n", escape_label(s.name),
                       s.stats.abandoned);
  help("usherd_parked_wait_seconds", "histogram",
       "Time a connection waited in the waiting room before its instance started.");
  snapshot.room_wait_seconds.render(out, "usherd_parked_wait_seconds", "");
  help("usherd_control_requests_total", "counter", "Control requests, by answer.");
  out +=
      fmt::format("usherd_control_requests_total{{result=\"ok\"}} {}\n", snapshot.control_answered);
  out += fmt::format("usherd_control_requests_total{{result=\"error\"}} {}\n",
                     snapshot.control_refused);
  return out;
}

}  // namespace usherd::supervisor

// The daemon: one thread, one io_context, and the components that own usherd's state.
//
// Each piece of state has one owner (docs/design.md has the map):
//   InstanceTable     every tracked process, the exit watch, the state file, adoption
//   ReadinessMonitor  the notify socket, output captures, startup deadlines
//   ListenerSet       the configured sockets and their listening fds (pause, hold)
//   ConnectionPath    accept -> admit -> plan -> launch; the admission engine, the launcher
//   ServiceRunner     one per Accept=no socket, around its ServiceCore
//   ControlServer     the control socket and HTTP /metrics, answering from a StatusSnapshot
//   HostStatus        the process title, sd_notify, the watchdog, "stopping"
// The daemon itself only wires them together: it loads and reloads the configuration,
// reads signals, runs housekeeping, and orders the shutdown.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/unique_fd.h"
#include "supervisor/connection_path.h"
#include "supervisor/control_server.h"
#include "supervisor/host_status.h"
#include "supervisor/instance_table.h"
#include "supervisor/listener_set.h"
#include "supervisor/readiness_monitor.h"
#include "supervisor/status_snapshot.h"

namespace usherd::supervisor {

struct Options {
  std::vector<std::string> unit_dirs;
  std::optional<std::string> config_file;
  std::string runtime_dir = "/run/usherd";
};

class Daemon {
 public:
  explicit Daemon(Options options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Loads the configuration, opens listeners, and runs until SIGTERM/SIGINT. Returns the
  /// process exit code.
  int run();

 private:
  /// Loads (or reloads) the configuration; a unit that fails keeps its previous version.
  /// metrics_listen: usherd.conf's MetricsListen=, when wanted.
  bool load(bool initial, std::string& report,
            std::optional<units::ListenAddress>* metrics_listen = nullptr);
  std::pair<bool, std::string> reload();
  bool stop_instance(const std::string& name);
  StatusSnapshot snapshot(Clock::time_point now) const;
  std::string title() const;
  PlanContext plan_context() const;
  /// Gives the instances a previous usherd left running to their owners.
  void adopt();
  void on_readable(Listener& listener);
  void after_end();
  void start_signals();
  void arm_signals();
  void on_signal(int signo);
  void begin_shutdown();
  void maybe_finish_shutdown();
  void housekeeping();

  Options options_;
  asio::io_context io_;
  UniqueFd dev_null_;
  HostStatus host_;
  InstanceTable instances_;
  ReadinessMonitor readiness_;
  ListenerSet listeners_;
  ConnectionPath connections_;
  ControlServer control_;
  std::unique_ptr<asio::posix::stream_descriptor> signal_fd_;  ///< signalfd of TERM, INT, HUP, USR1
  asio::steady_timer housekeeping_timer_;
};

}  // namespace usherd::supervisor

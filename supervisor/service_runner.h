// The shell around one Accept=no service's ServiceCore (service_core.h): it carries the
// core's actions out — spawns the service's processes with the listening sockets, signals
// them, arms the one timer — and turns what happens to them into the core's events. It is
// the owner of the service's processes (instance.h), so their readiness and ends come
// straight here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "supervisor/instance_table.h"
#include "supervisor/listener_set.h"
#include "supervisor/readiness_monitor.h"
#include "supervisor/service_core.h"

namespace usherd::supervisor {

/// The core's view of a socket's service.
ServiceShape shape_of(const Socket& socket);

class ServiceRunner : public InstanceOwner {
 public:
  ServiceRunner(asio::io_context& io, Socket& socket, InstanceTable& instances,
                ReadinessMonitor& readiness, ListenerSet& listeners, int dev_null);
  ~ServiceRunner();
  ServiceRunner(const ServiceRunner&) = delete;
  ServiceRunner& operator=(const ServiceRunner&) = delete;

  /// A reload replaced the socket (same name, perhaps a new unit): the run goes on with it.
  void rebind(Socket& socket);
  /// A connection (or a datagram) is waiting on an idle service's socket.
  void activate();
  /// The configuration was reloaded while the service runs: ExecReload=.
  void reload();
  /// usherd is stopping.
  void shutdown();
  /// The main process found running after usherd's restart.
  void adopt(Instance& instance, units::Duration startup_timeout, Clock::time_point now);

  bool idle() const { return core_.phase() == ServiceCore::Phase::idle; }
  const char* phase_name() const { return core_.phase_name(); }
  std::uint64_t spawn_failures() const { return spawn_failures_; }

  void instance_ready(Instance& instance, const char* via, Clock::time_point now) override;
  void instance_ready_again(Instance& instance) override;
  void instance_ended(Instance& instance, const EndStatus& status, Clock::time_point now) override;

 private:
  void execute(ServiceActions actions);
  void perform(const ServiceAction& action);
  /// Starts one of the service's processes; nullptr (logged, counted) when it could not be.
  Instance* spawn(activation::SpawnPlan spawn, Instance::Role role, std::string name,
                  UniqueFd output);
  Instance* spawn_main(std::size_t step);
  Instance* spawn_command(const activation::SpawnPlan& plan, std::string name);
  /// ExecStop= expanded for the main process now; how many commands.
  std::size_t prepare_stop_commands();
  void kill_main(bool resignal);
  bool main_holds_listeners() const;

  asio::io_context& io_;
  Socket* socket_;
  InstanceTable& instances_;
  ReadinessMonitor& readiness_;
  ListenerSet& listeners_;
  int dev_null_;
  ServiceCore core_;
  std::uint64_t main_key_ = 0;     ///< the main process's Instance, when there is one
  std::uint64_t command_key_ = 0;  ///< the command (ExecStartPre= ...) running now
  std::vector<activation::SpawnPlan> reload_commands_, stop_commands_;
  std::vector<ServiceAction> pending_;  ///< actions not yet carried out (in order)
  bool executing_ = false;
  asio::steady_timer timer_;
  asio::steady_timer resignal_timer_;
  std::uint64_t spawn_failures_ = 0;
};

}  // namespace usherd::supervisor

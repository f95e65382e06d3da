// What a unit's process is started with: the spawn plan of a service, built once at load
// time, and the fds and variables each start adds to it. Pure: no I/O but the credential
// lookup, which the caller supplies (NSS at load time in usherd, a table in the tests).
//
// The connection path and the service runners only add what a start has of its own (the
// connection, the listening sockets, the capture of the output); everything a unit says is
// decided here, with systemd's rules for stdio as one table (route_stdio).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/credentials.h"
#include "activation/ready_log.h"
#include "activation/spawn.h"
#include "base/result.h"
#include "units/config.h"

namespace usherd::supervisor {

/// Where one of an instance's output fds goes.
enum class OutputRoute { null, socket, journal };

/// stdin/stdout/stderr of a unit's main process, after systemd's "inherit" rules.
struct StdioRoute {
  bool stdin_socket = false;
  OutputRoute out = OutputRoute::journal;
  OutputRoute err = OutputRoute::journal;
  bool operator==(const StdioRoute&) const = default;
};

/// systemd.exec(5): StandardOutput=inherit is the socket when input is the socket, else the
/// journal; StandardError=inherit is whatever stdout is.
StdioRoute route_stdio(units::StdInput input, units::StdOutput output, units::StdOutput error);

/// What a service needs at every spawn, prepared once at load time (NSS, argv expansion,
/// the environment, the readiness matcher), so the per-connection path only adds the
/// connection's own fds and variables.
struct ServicePlan {
  units::ServiceUnit unit;
  activation::SpawnPlan base;
  std::optional<activation::ReadyLogMatcher> ready_log;
  std::vector<activation::SpawnPlan> pre, post;  ///< ExecStartPre=/ExecStartPost=
  std::vector<bool> pre_ignore_failure, post_ignore_failure;
  /// Type=oneshot: every ExecStart= in order (the first is base); the service has started
  /// when the last one has exited successfully.
  std::vector<activation::SpawnPlan> main_commands;
  std::vector<bool> main_ignore_failure;
  /// User=/Group= resolved; what every command not prefixed '+' or '!' runs as.
  std::optional<activation::Credentials> user_credentials;
  bool instance_specifiers = false;  ///< the template needs instantiating per instance
  StdioRoute stdio;
  bool declares_readiness = false;

  /// Output goes to usherd (the journal, or the X-ReadyLog= matcher): a capture is needed.
  bool captures_output() const {
    return stdio.out == OutputRoute::journal || stdio.err == OutputRoute::journal ||
           ready_log.has_value();
  }
};

/// Looks up User=, Group= and SupplementaryGroups= (activation::resolve_credentials).
using CredentialLookup = std::function<Result<activation::Credentials>(
    std::string_view user, std::string_view group, const std::vector<std::string>& groups)>;

/// What a plan depends on besides its unit.
struct PlanContext {
  std::string notify_socket;  ///< NOTIFY_SOCKET= for units that may notify
  CredentialLookup lookup;    ///< activation::resolve_credentials when empty
};

/// The plan for unit. With resolved (the plan of the template unit this one instantiates),
/// that plan's credentials and readiness matcher serve and nothing is looked up: a User=
/// that names the connection is refused.
Result<std::shared_ptr<ServicePlan>> make_plan(const units::ServiceUnit& unit,
                                               const PlanContext& context,
                                               const ServicePlan* resolved = nullptr);

/// The fds one connection's start hands over; capture is -1 without an output capture.
struct ConnectionFds {
  int connection = -1;
  int capture = -1;
  int dev_null = -1;
};

/// A connection's spawn: spawn (the plan's base, or its instantiation) with the connection,
/// the capture and REMOTE_ADDR=/REMOTE_PORT= (remote: the peer's ip and port, for IP peers)
/// added, as StandardInput=socket (the connection on 0) or sd_listen_fds(3) (on fd 3,
/// LISTEN_FDS=1, LISTEN_FDNAMES=fd_name) wants it.
activation::SpawnPlan connection_spawn(const ServicePlan& plan, activation::SpawnPlan spawn,
                                       const ConnectionFds& fds,
                                       std::optional<std::pair<std::string, unsigned>> remote,
                                       std::string_view fd_name);

/// An Accept=no service's main process: spawn with the listening sockets from fd 3 in
/// Listen*= order (LISTEN_FDS=, LISTEN_FDNAMES= fd_name each), or inetd's "wait" mode (the
/// one listening socket on stdin) for StandardInput=socket. capture is -1 without one.
activation::SpawnPlan service_main_spawn(const ServicePlan& plan, activation::SpawnPlan spawn,
                                         const std::vector<int>& listeners,
                                         std::string_view fd_name, int capture, int dev_null);

/// An ExecStartPre=/Post=/Reload=/Stop= command's spawn: stdio on /dev/null.
activation::SpawnPlan command_spawn(activation::SpawnPlan spawn, int dev_null);

/// ExecReload=/ExecStop= commands, expanded when they run with $MAINPID naming the main
/// process.
Result<std::vector<activation::SpawnPlan>> service_commands(
    const ServicePlan& plan, const std::vector<units::ExecCommand>& commands, pid_t main_pid);

}  // namespace usherd::supervisor

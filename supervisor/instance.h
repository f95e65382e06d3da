// One process usherd started and tracks, and the interface of whoever decides what follows
// its readiness and its end (its owner: the connection path, or its service's runner).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "activation/process.h"
#include "base/unique_fd.h"
#include "policy/admission.h"
#include "supervisor/drop_log.h"
#include "supervisor/spawn_plan.h"

namespace usherd::supervisor {

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

class InstanceOwner;

/// A per-connection instance, the main process of an Accept=no service, or one of that
/// service's commands (ExecStartPre= and the like).
struct Instance {
  enum class State { starting, running, stopping };
  enum class Role { connection, service_main, service_helper };
  std::uint64_t key = 0;  ///< the InstanceTable's, never reused
  std::string name;
  std::string socket;  ///< socket unit name
  Role role = Role::connection;
  /// Decides what follows its readiness and end; null once that owner is gone (its socket
  /// was removed by a reload): the instance is then only watched until it ends.
  InstanceOwner* owner = nullptr;
  pid_t pid = 0;
  std::uint64_t pidfd_inode = 0;  ///< identity for re-adoption (see StateEntry)
  std::uint64_t start_time = 0;   ///< /proc/PID/stat field 22, where pidfd_inode is 0
  UniqueFd pidfd;                 ///< in the exit watch while the instance is tracked
  std::unique_ptr<asio::posix::stream_descriptor> output;  ///< journal/ready-log capture
  /// A copy of its TCP connection while it starts, to read how far its client got when
  /// stalled startups are reclaimed (policy/stall.h); closed at ready and at its end.
  UniqueFd connection;
  std::string peer;
  std::string remote_ip;
  std::optional<policy::InstanceId> admission;
  State state = State::starting;
  const char* ready_via = nullptr;  ///< "notify", "log", "exec", "adopted", "unknown", or null
  Clock::time_point started{};
  std::chrono::system_clock::time_point started_wall{};
  std::unique_ptr<asio::steady_timer> timer;
  std::shared_ptr<ServicePlan> plan;
  bool adopted = false;       ///< re-adopted after a restart: not our child, status unknown
  bool persisted = false;     ///< its '+' line is in the state file
  bool timed_out = false;     ///< stopped by the startup timeout, or reclaimed as stalled
  bool client_gone = false;   ///< stopped because its client hung up before it was ready
  bool watched_exit = false;  ///< its pidfd is in the exit watch
  /// It said STOPPING=1 itself (usherd did not ask it to stop): TimeoutStopSec= runs, and
  /// usherd's shutdown stops it like one still starting.
  bool stopping_by_itself = false;
  /// Killed for missing the pre-exec deadline: counted as a failed spawn.
  bool exec_overdue = false;
  /// STATUS= lines, logged at a bounded rate per instance; made on the first one.
  std::unique_ptr<DropLog> status_log;
};

/// How a tracked process ended: its status, or none when it was adopted (not usherd's child:
/// the kernel kept its status for its real parent).
using EndStatus = std::optional<activation::ExitStatus>;

class InstanceOwner {
 public:
  /// The instance signalled readiness (its state is running already).
  virtual void instance_ready(Instance& instance, const char* via, Clock::time_point now) = 0;
  /// READY=1 again from a running instance (a service's main process that reloaded).
  virtual void instance_ready_again(Instance& instance) = 0;
  /// The instance ended; it is forgotten when this returns.
  virtual void instance_ended(Instance& instance, const EndStatus& status,
                              Clock::time_point now) = 0;
  virtual ~InstanceOwner() = default;
};

/// RuntimeDirectory=: created (again, if something removed it) before every start of plan.
void prepare_runtime_directories(const ServicePlan& plan, const std::string& name);

/// The "end instance=... status=..." record every end is logged with.
void log_end(const Instance& instance, const EndStatus& status, Clock::time_point now);

}  // namespace usherd::supervisor

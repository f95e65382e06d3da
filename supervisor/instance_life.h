// The life of one instance as a state machine with no I/O: starting (not yet ready: it holds
// a startup slot), running (ready), stopping (asked to stop, or said STOPPING=1 itself).
// The readiness monitor and the instance table carry the actions out; the connection path
// turns the end into the admission policy's terms (end_of).
#pragma once

#include "policy/exit_outcomes.h"
#include "supervisor/instance.h"

namespace usherd::supervisor {

enum class LifeEvent {
  ready,              ///< READY=1, a ready-log match, the exec (no readiness declared)
  stopping_notified,  ///< STOPPING=1 from the instance
  startup_deadline,   ///< its startup deadline passed
  stop_requested,     ///< usherctl stop, a service's stop, shutdown
};

enum class LifeAction {
  none,
  became_ready,       ///< tell the owner, record it, cancel the startup deadline
  arm_stop_deadline,  ///< TimeoutStopSec= from now, then KillSignal=
  time_out,           ///< counted and logged as a startup timeout, then stopped
  stop,               ///< KillSignal=, SIGKILL after TimeoutStopSec=
};

struct LifeStep {
  Instance::State state;
  LifeAction action;
  bool operator==(const LifeStep&) const = default;
};

/// What event does to an instance in state.
LifeStep next_step(Instance::State state, LifeEvent event);

/// How an instance ended, for the admission policy: usherd's own startup timeout, a signal,
/// or an exit status (an adopted instance's status is unknown: counted as an exit).
policy::InstanceEnd end_of(bool timed_out, const EndStatus& status, bool client_gone = false);

/// It ended before it was ready: still starting, or stopped before it ever was ready.
bool ended_before_ready(Instance::State state, const char* ready_via);

}  // namespace usherd::supervisor

#include "supervisor/instance_life.h"

namespace usherd::supervisor {

LifeStep next_step(Instance::State state, LifeEvent event) {
  using S = Instance::State;
  switch (event) {
    case LifeEvent::ready:
      if (state == S::starting) return {S::running, LifeAction::became_ready};
      return {state, LifeAction::none};
    case LifeEvent::stopping_notified:
      // Still starting, it keeps its startup slot and deadline: saying it is stopping does
      // not make an unauthenticated instance any less of one. Once ready, it is deactivating
      // and TimeoutStopSec= applies, as systemd applies it after STOPPING=1.
      if (state == S::running) return {S::stopping, LifeAction::arm_stop_deadline};
      return {state, LifeAction::none};
    case LifeEvent::startup_deadline:
      if (state == S::starting) return {S::stopping, LifeAction::time_out};
      return {state, LifeAction::none};
    case LifeEvent::stop_requested:
      return {S::stopping, LifeAction::stop};
  }
  return {state, LifeAction::none};
}

policy::InstanceEnd end_of(bool timed_out, const EndStatus& status, bool client_gone) {
  if (timed_out) return policy::InstanceEnd::startup_timeout();
  if (client_gone) return policy::InstanceEnd::client_gone();
  if (status && status->signaled) return policy::InstanceEnd::killed(status->code_or_signal);
  return policy::InstanceEnd::exited(status ? status->code_or_signal : -1);
}

bool ended_before_ready(Instance::State state, const char* ready_via) {
  return state == Instance::State::starting ||
         (state == Instance::State::stopping && ready_via == nullptr);
}

}  // namespace usherd::supervisor

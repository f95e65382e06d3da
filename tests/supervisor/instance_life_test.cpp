// An instance's life as a table: every state against every event, and how an end is told to
// the admission policy.
#include "supervisor/instance_life.h"

#include <signal.h>

#include "tests/catch.h"

using namespace usherd;
using namespace usherd::supervisor;
using S = Instance::State;
using E = LifeEvent;
using A = LifeAction;

TEST_CASE("each event in each state", "[supervisor][life]") {
  struct Row {
    S state;
    E event;
    LifeStep expected;
  };
  const Row rows[] = {
      {S::starting, E::ready, {S::running, A::became_ready}},
      {S::running, E::ready, {S::running, A::none}},
      {S::stopping, E::ready, {S::stopping, A::none}},
      // Saying STOPPING=1 does not make an unauthenticated instance any less of one.
      {S::starting, E::stopping_notified, {S::starting, A::none}},
      {S::running, E::stopping_notified, {S::stopping, A::arm_stop_deadline}},
      {S::stopping, E::stopping_notified, {S::stopping, A::none}},
      {S::starting, E::startup_deadline, {S::stopping, A::time_out}},
      {S::running, E::startup_deadline, {S::running, A::none}},
      {S::stopping, E::startup_deadline, {S::stopping, A::none}},
      {S::starting, E::stop_requested, {S::stopping, A::stop}},
      {S::running, E::stop_requested, {S::stopping, A::stop}},
      {S::stopping, E::stop_requested, {S::stopping, A::stop}},
  };
  for (const auto& row : rows) {
    INFO("row " << (&row - rows));
    CHECK(next_step(row.state, row.event) == row.expected);
  }
}

TEST_CASE("an end in the admission policy's terms", "[supervisor][life]") {
  using End = policy::InstanceEnd;
  activation::ExitStatus exited5{false, 5, false};
  activation::ExitStatus killed{true, SIGKILL, false};
  CHECK(end_of(false, exited5) == End::exited(5));
  CHECK(end_of(false, killed) == End::killed(SIGKILL));
  // usherd's own deadline, whatever signal it took.
  CHECK(end_of(true, killed) == End::startup_timeout());
  // Stopped by usherd because its client had gone: what sshd records for such a child.
  CHECK(end_of(false, killed, true) == End::client_gone());
  // Adopted: not usherd's child, its status unknown.
  CHECK(end_of(false, std::nullopt) == End::exited(-1));
}

TEST_CASE("before ready means never ready", "[supervisor][life]") {
  CHECK(ended_before_ready(S::starting, nullptr));
  CHECK(ended_before_ready(S::stopping, nullptr));
  CHECK_FALSE(ended_before_ready(S::stopping, "notify"));
  CHECK_FALSE(ended_before_ready(S::running, "exec"));
}

// The Accept=no service machine, event by event, as dinit's proctests.cc tests its
// services: each step is an event and the actions it must produce, in order. Log lines are
// shown by their first word only, except where the wording is the point.
#include "supervisor/service_core.h"

#include <signal.h>

#include <fmt/format.h>

#include "tests/catch.h"

using namespace usherd::supervisor;
using namespace std::chrono_literals;
using Kind = ServiceAction::Kind;
using Phase = ServiceCore::Phase;
using Strings = std::vector<std::string>;

namespace {

Strings show(const ServiceActions& actions) {
  Strings out;
  for (const auto& a : actions) {
    switch (a.kind) {
      case Kind::spawn_pre:
        out.push_back(fmt::format("spawn pre {}", a.step));
        break;
      case Kind::spawn_main:
        out.push_back(fmt::format("spawn main {}", a.step));
        break;
      case Kind::spawn_post:
        out.push_back(fmt::format("spawn post {}", a.step));
        break;
      case Kind::spawn_reload:
        out.push_back(fmt::format("spawn reload {}", a.step));
        break;
      case Kind::spawn_stop:
        out.push_back(fmt::format("spawn stop {}", a.step));
        break;
      case Kind::kill_main:
        out.push_back("kill");
        break;
      case Kind::resignal_main:
        out.push_back("kill twice");
        break;
      case Kind::arm_timer:
        out.push_back(fmt::format(
            "timer {}ms", std::chrono::duration_cast<std::chrono::milliseconds>(a.after).count()));
        break;
      case Kind::cancel_timer:
        out.push_back("cancel timer");
        break;
      case Kind::watch_sockets:
        out.push_back("watch");
        break;
      case Kind::probe_listeners:
        out.push_back("probe");
        break;
      case Kind::log_info:
      case Kind::log_warning:
      case Kind::log_error:
        out.push_back("log " + a.text.substr(0, a.text.find(' ')));
        break;
    }
  }
  return out;
}

ServiceShape shape(std::size_t pre = 0, std::size_t post = 0) {
  ServiceShape s;
  s.socket = "web.socket";
  s.service = "web.service";
  s.pre_ignore_failure.assign(pre, false);
  s.post_ignore_failure.assign(post, false);
  s.restart_sec = 100ms;
  s.timeout_stop = 5s;
  return s;
}

ProcessEnd exited(int code, std::chrono::steady_clock::duration lifetime = 1s) {
  return ProcessEnd{code == 0, false, code, lifetime};
}
ProcessEnd killed(int signal) {
  return ProcessEnd{false, true, signal, 1s};
}

// Starts a service with no commands around its main process and makes it ready.
void run(ServiceCore& core) {
  CHECK(show(core.activate()) == Strings{"log activate", "spawn main 0"});
  CHECK(show(core.main_spawned(100)).empty());
  CHECK(show(core.main_ready()) == Strings{"probe", "log started"});
  CHECK(show(core.listeners_held(true, 0)).empty());
  CHECK(core.phase() == Phase::running);
}

}  // namespace

TEST_CASE("a service runs its commands in order around the main process", "[supervisor][service]") {
  ServiceCore core(shape(2, 1));
  CHECK(show(core.activate()) == Strings{"log activate", "spawn pre 0"});
  CHECK(core.phase() == Phase::pre);
  CHECK(show(core.spawned(true)).empty());
  CHECK(show(core.command_exited(exited(0))) == Strings{"spawn pre 1"});
  CHECK(show(core.spawned(true)).empty());
  CHECK(show(core.command_exited(exited(0))) == Strings{"spawn main 0"});
  CHECK(core.phase() == Phase::main);
  CHECK(show(core.main_spawned(100)).empty());
  CHECK(show(core.main_ready()) == Strings{"probe", "spawn post 0"});
  CHECK(show(core.listeners_held(true, 0)).empty());
  CHECK(show(core.spawned(true)).empty());
  CHECK(show(core.command_exited(exited(0))) == Strings{"log started"});
  CHECK(core.phase() == Phase::running);
  CHECK(std::string(core.phase_name()) == "running");
  // A second connection while it runs: the service has the sockets; nothing to do.
  CHECK(show(core.activate()).empty());
}

TEST_CASE("a failing ExecStartPre= fails the start unless it is prefixed '-'",
          "[supervisor][service]") {
  ServiceCore strict(shape(1, 0));
  (void)strict.activate();
  (void)strict.spawned(true);
  // Restart=no: the socket is watched again after RestartSec=, backing off.
  CHECK(show(strict.command_exited(exited(3))) ==
        Strings{"log failed", "timer 100ms", "log watch"});
  CHECK(strict.phase() == Phase::idle);
  CHECK(show(strict.timer_fired()) == Strings{"watch"});

  ServiceShape lenient_shape = shape(1, 0);
  lenient_shape.pre_ignore_failure = {true};
  ServiceCore lenient(lenient_shape);
  (void)lenient.activate();
  (void)lenient.spawned(true);
  CHECK(show(lenient.command_exited(exited(3))) == Strings{"spawn main 0"});

  // A command that cannot even be started counts as failed with status 127.
  ServiceCore unstartable(shape(1, 0));
  (void)unstartable.activate();
  CHECK(show(unstartable.spawned(false)) == Strings{"timer 100ms", "log watch"});
}

TEST_CASE("Restart= decides, and the back-off doubles up to its cap", "[supervisor][service]") {
  ServiceShape s = shape();
  s.restart = usherd::units::RestartPolicy::on_failure;
  ServiceCore core(s);
  run(core);
  Strings delays;
  for (int i = 0; i < 14; ++i) {
    ServiceActions a = core.main_exited(exited(1, 50ms));
    REQUIRE(core.phase() == Phase::restart_wait);
    delays.push_back(show(a)[1]);
    CHECK(show(core.timer_fired()) == Strings{"log activate", "spawn main 0"});
    (void)core.main_spawned(100);
    (void)core.main_ready();
    (void)core.listeners_held(true, 0);
  }
  CHECK(delays == Strings{"timer 100ms", "timer 200ms", "timer 400ms", "timer 800ms",
                          "timer 1600ms", "timer 3200ms", "timer 6400ms", "timer 12800ms",
                          "timer 25600ms", "timer 51200ms", "timer 102400ms", "timer 204800ms",
                          "timer 300000ms", "timer 300000ms"});
  // After a stable run the back-off starts again from RestartSec=.
  CHECK(show(core.main_exited(exited(1, 11s)))[1] == "timer 100ms");
}

TEST_CASE("a clean exit or a clean signal is not a failure", "[supervisor][service]") {
  struct Row {
    usherd::units::RestartPolicy policy;
    ProcessEnd end;
    bool restarts;
  };
  using P = usherd::units::RestartPolicy;
  const Row rows[] = {
      {P::on_failure, exited(0), false},
      {P::on_failure, exited(1), true},
      {P::on_failure, killed(SIGTERM), false},
      {P::on_failure, killed(SIGKILL), true},
      {P::on_success, exited(0), true},
      {P::on_success, exited(1), false},
      {P::always, exited(0), true},
      {P::no, exited(1), false},
      {P::on_abnormal, killed(SIGSEGV), true},
      {P::on_abnormal, exited(1), false},
      {P::on_abort, killed(SIGABRT), true},
  };
  for (const auto& row : rows) {
    INFO("row " << (&row - rows));
    ServiceShape s = shape();
    s.restart = row.policy;
    ServiceCore core(s);
    run(core);
    (void)core.main_exited(row.end);
    CHECK((core.phase() == Phase::restart_wait) == row.restarts);
  }
  // RestartPreventExitStatus= wins over Restart=always.
  ServiceShape s = shape();
  s.restart = P::always;
  s.restart_prevent_exit_status = {42};
  s.restart_prevent_signals = {SIGUSR1};
  for (ProcessEnd end : {exited(42), killed(SIGUSR1)}) {
    ServiceCore core(s);
    run(core);
    (void)core.main_exited(end);
    CHECK(core.phase() == Phase::idle);
  }
}

TEST_CASE("a oneshot runs each ExecStart= then is done", "[supervisor][service]") {
  ServiceShape s = shape(0, 1);
  s.main_ignore_failure = {false, true};
  ServiceCore core(s);
  CHECK(show(core.activate()) == Strings{"log activate", "spawn main 0"});
  (void)core.main_spawned(100);
  CHECK(show(core.main_ready()).empty());  // what a oneshot notifies changes nothing
  CHECK(show(core.main_exited(exited(0))) == Strings{"spawn main 1"});
  (void)core.main_spawned(101);
  // '-': its failure is ignored; then ExecStartPost=, and the socket is watched again.
  CHECK(show(core.main_exited(exited(9))) == Strings{"probe", "spawn post 0"});
  (void)core.listeners_held(false, 0);
  (void)core.spawned(true);
  CHECK(show(core.command_exited(exited(0))) == Strings{"log finished", "watch"});
  CHECK(core.phase() == Phase::idle);
}

TEST_CASE("stop runs ExecStop= in order, then the signal, within TimeoutStopSec=",
          "[supervisor][service]") {
  ServiceCore core(shape());
  run(core);
  CHECK(show(core.stop(2)) == Strings{"timer 5000ms", "spawn stop 0"});
  CHECK(core.phase() == Phase::stopping);
  (void)core.spawned(true);
  CHECK(show(core.command_exited(exited(0))) == Strings{"spawn stop 1"});
  // The second cannot be started: on to the signal.
  CHECK(show(core.spawned(false)) == Strings{"kill"});
  CHECK(show(core.main_exited(killed(SIGTERM))) == Strings{"cancel timer", "watch"});
  CHECK(core.phase() == Phase::idle);
  CHECK(core.restarts() == 0);
}

TEST_CASE("a stop that overruns its time goes to the signal", "[supervisor][service]") {
  ServiceCore core(shape());
  run(core);
  (void)core.stop(1);
  (void)core.spawned(true);
  CHECK(show(core.timer_fired()) == Strings{"log stop", "kill"});
  // ExecStop= never runs for a service that had not started.
  ServiceCore starting(shape());
  (void)starting.activate();
  (void)starting.main_spawned(100);
  CHECK(show(starting.stop(3)) == Strings{"timer 5000ms", "kill"});
}

TEST_CASE("reload runs ExecReload= one by one; a stop waits for the running one",
          "[supervisor][service]") {
  ServiceCore core(shape());
  run(core);
  CHECK(show(core.reload(2)) == Strings{"log reload", "spawn reload 0"});
  (void)core.spawned(true);
  CHECK(show(core.command_exited(exited(0))) == Strings{"spawn reload 1"});
  (void)core.spawned(true);
  // A stop arrives while ExecReload= runs: it goes on once that command is done.
  CHECK(show(core.stop(1)) == Strings{"timer 5000ms"});
  CHECK(show(core.command_exited(exited(0))) == Strings{"spawn stop 0"});

  // A reload command that cannot be started ends the reload.
  ServiceCore other(shape());
  run(other);
  (void)other.reload(3);
  CHECK(show(other.spawned(false)).empty());
  CHECK_FALSE(other.command_running());
  // Not running: nothing to reload.
  ServiceCore idle(shape());
  CHECK(show(idle.reload(1)).empty());
}

TEST_CASE("a service that lets its sockets go is stopped, and signalled twice",
          "[supervisor][service]") {
  ServiceCore core(shape());
  run(core);
  (void)core.reload(1);
  (void)core.spawned(true);
  CHECK(show(core.command_exited(exited(0))) == Strings{"probe"});
  ServiceActions a = core.listeners_held(false, 0);
  CHECK(show(a) == Strings{"log service=web.service", "timer 5000ms", "kill twice"});
  CHECK(a[0].text ==
        "service=web.service pid=100 no longer holds the listening sockets of web.socket "
        "(after reload): stopping it; the next connection starts it again");
  CHECK(show(core.main_exited(killed(SIGTERM))) == Strings{"cancel timer", "watch"});

  // One that never held them (it binds its own) is left alone.
  ServiceCore binder(shape());
  CHECK(show(binder.activate()).size() == 2);
  (void)binder.main_spawned(100);
  (void)binder.main_ready();
  (void)binder.listeners_held(false, 0);
  CHECK(show(binder.main_ready_again()) == Strings{"probe"});
  CHECK(show(binder.listeners_held(false, 0)).empty());
  CHECK(binder.phase() == Phase::running);
}

TEST_CASE("a failing ExecStartPost= stops the service and counts as a failed start",
          "[supervisor][service]") {
  ServiceShape s = shape(0, 1);
  s.restart = usherd::units::RestartPolicy::on_failure;
  ServiceCore core(s);
  (void)core.activate();
  (void)core.main_spawned(100);
  (void)core.main_ready();
  (void)core.listeners_held(true, 0);
  (void)core.spawned(true);
  CHECK(show(core.command_exited(exited(1))) == Strings{"log failed", "timer 5000ms", "kill"});
  CHECK(show(core.main_exited(killed(SIGTERM))) ==
        Strings{"cancel timer", "timer 100ms", "log restart"});
  CHECK(core.phase() == Phase::restart_wait);
}

TEST_CASE("shutdown stops the service and nothing starts again", "[supervisor][service]") {
  ServiceShape s = shape();
  s.restart = usherd::units::RestartPolicy::always;
  ServiceCore core(s);
  run(core);
  CHECK(show(core.shutdown(0)) == Strings{"timer 5000ms", "kill"});
  CHECK(show(core.main_exited(killed(SIGTERM))) == Strings{"cancel timer"});
  CHECK(show(core.activate()).empty());

  // Shut down while waiting to restart: the restart never comes.
  ServiceCore waiting(s);
  run(waiting);
  (void)waiting.main_exited(exited(1));
  CHECK(show(waiting.shutdown(0)) == Strings{"cancel timer"});
  CHECK(show(waiting.timer_fired()).empty());
}

TEST_CASE("a main process that cannot be started fails the start", "[supervisor][service]") {
  ServiceCore core(shape());
  (void)core.activate();
  CHECK(show(core.spawned(false)) == Strings{"timer 100ms", "log watch"});
  CHECK_FALSE(core.has_main());
}

TEST_CASE("an adopted main process goes on where it was", "[supervisor][service]") {
  ServiceCore ready(shape());
  ready.adopt(true, 321);
  CHECK(ready.phase() == Phase::running);
  CHECK(ready.main_pid() == 321);
  ServiceCore starting(shape());
  starting.adopt(false, 322);
  CHECK(show(starting.main_ready()) == Strings{"probe", "log started"});
}

// Tests for policy/exit_outcomes: every row of OpenSSH 10's child_reap() table and of the
// legacy table, and the penalty each row earns through the penalty table.
#include "policy/exit_outcomes.h"

#include <csignal>
#include <optional>
#include <string>

#include "policy/penalty_box.h"
#include "tests/catch.h"

using namespace std::chrono_literals;
using usherd::policy::ExitStatusOutcomes;
using usherd::policy::InstanceEnd;
using usherd::policy::PenaltyKind;

namespace {

// "none" or the keyword, so a table row reads as sshd_config(5) does.
std::string word(std::optional<PenaltyKind> kind) {
  return kind ? std::string(usherd::policy::to_string(*kind)) : "none";
}

}  // namespace

TEST_CASE("an sshd instance's end maps to OpenSSH 10's outcome", "[policy][outcomes]") {
  auto [end, outcome] = GENERATE(table<InstanceEnd, std::string>({
      {InstanceEnd::exited(0), "none"},
      {InstanceEnd::exited(3), "grace-exceeded"},
      {InstanceEnd::exited(4), "crash"},
      {InstanceEnd::exited(5), "authfail"},
      {InstanceEnd::exited(6), "refuseconnection"},
      {InstanceEnd::exited(7), "invaliduser"},
      {InstanceEnd::exited(1), "noauth"},
      {InstanceEnd::exited(2), "noauth"},
      {InstanceEnd::exited(8), "noauth"},
      {InstanceEnd::exited(255), "noauth"},
      {InstanceEnd::killed(SIGSEGV), "crash"},
      {InstanceEnd::killed(SIGBUS), "crash"},
      {InstanceEnd::killed(SIGTRAP), "crash"},
      {InstanceEnd::killed(SIGSYS), "crash"},
      {InstanceEnd::killed(SIGFPE), "crash"},
      {InstanceEnd::killed(SIGILL), "crash"},
      {InstanceEnd::killed(SIGABRT), "crash"},
      {InstanceEnd::killed(SIGTERM), "none"},
      {InstanceEnd::killed(SIGKILL), "none"},
      {InstanceEnd::killed(SIGHUP), "none"},
      {InstanceEnd::killed(SIGINT), "none"},
      {InstanceEnd::killed(SIGPIPE), "none"},
      {InstanceEnd::killed(SIGUSR1), "none"},
      {InstanceEnd::startup_timeout(), "grace-exceeded"},
      {InstanceEnd::client_gone(), "noauth"},
  }));
  INFO("how=" << static_cast<int>(end.how) << " code=" << end.code);
  CHECK(word(penalty_for(end, ExitStatusOutcomes::openssh)) == outcome);
}

TEST_CASE("other services keep the legacy outcomes: exit noauth, signal crash",
          "[policy][outcomes]") {
  auto [end, outcome] = GENERATE(table<InstanceEnd, std::string>({
      {InstanceEnd::exited(0), "noauth"},
      {InstanceEnd::exited(3), "noauth"},
      {InstanceEnd::exited(5), "noauth"},
      {InstanceEnd::exited(255), "noauth"},
      {InstanceEnd::killed(SIGSEGV), "crash"},
      {InstanceEnd::killed(SIGKILL), "crash"},
      {InstanceEnd::killed(SIGTERM), "crash"},
      {InstanceEnd::startup_timeout(), "grace-exceeded"},
      {InstanceEnd::client_gone(), "noauth"},
  }));
  INFO("how=" << static_cast<int>(end.how) << " code=" << end.code);
  CHECK(word(penalty_for(end, ExitStatusOutcomes::legacy)) == outcome);
}

TEST_CASE("only OpenSSH's crash signals are crashes", "[policy][outcomes]") {
  for (int signal = 1; signal < 32; ++signal) {
    bool crash = signal == SIGSEGV || signal == SIGBUS || signal == SIGTRAP || signal == SIGSYS ||
                 signal == SIGFPE || signal == SIGILL || signal == SIGABRT;
    INFO("signal " << signal);
    CHECK(usherd::policy::is_crash_signal(signal) == crash);
  }
}

TEST_CASE("each sshd outcome earns its PerSourcePenalties time", "[policy][outcomes]") {
  // The table test of the issue: an end, through OpenSSH's table, to the penalty its block
  // serves with sshd's default PerSourcePenalties (min:15s, so only crash refuses at once).
  auto [end, seconds, refused] = GENERATE(table<InstanceEnd, double, bool>({
      {InstanceEnd::exited(0), 0, false},
      {InstanceEnd::exited(3), 10, false},
      {InstanceEnd::exited(4), 90, true},
      {InstanceEnd::exited(5), 5, false},
      {InstanceEnd::exited(6), 10, false},
      {InstanceEnd::exited(7), 5, false},
      {InstanceEnd::exited(255), 1, false},
      {InstanceEnd::killed(SIGSEGV), 90, true},
      {InstanceEnd::killed(SIGKILL), 0, false},
      {InstanceEnd::startup_timeout(), 10, false},
  }));
  const usherd::policy::PenaltyConfig config;
  usherd::policy::PenaltyBox box;
  box.configure(config, {}, {});
  const auto peer = *usherd::policy::IpAddress::parse("192.0.2.7");
  const auto now = usherd::policy::TimePoint() + 1000s;
  const auto kind = penalty_for(end, ExitStatusOutcomes::openssh);
  INFO("how=" << static_cast<int>(end.how) << " code=" << end.code);
  CHECK(kind.has_value() == (seconds > 0));
  if (kind) {
    CHECK(config.duration_for(*kind) == std::chrono::duration<double>(seconds));
    box.penalise(peer, *kind, now);
  }
  CHECK(box.is_refused(peer, now) == refused);
}

TEST_CASE("X-ExitStatusOutcomes= words name the tables", "[policy][outcomes]") {
  CHECK(usherd::policy::parse_exit_status_outcomes("openssh") == ExitStatusOutcomes::openssh);
  CHECK(usherd::policy::parse_exit_status_outcomes("legacy") == ExitStatusOutcomes::legacy);
  CHECK_FALSE(usherd::policy::parse_exit_status_outcomes("OpenSSH"));
  CHECK_FALSE(usherd::policy::parse_exit_status_outcomes(""));
  CHECK(to_string(ExitStatusOutcomes::openssh) == "openssh");
  CHECK(to_string(ExitStatusOutcomes::legacy) == "legacy");
}

// The two exit-outcome tables; see exit_outcomes.h.
#include "policy/exit_outcomes.h"

#include <csignal>

namespace usherd::policy {

namespace {

// srclimit.h: "meaningful exit values, used by sshd listener for penalties".
constexpr int kExitLoginGrace = 3;
constexpr int kExitChildCrash = 4;
constexpr int kExitAuthAttempted = 5;
constexpr int kExitConfigRefused = 6;
constexpr int kExitInvalidUser = 7;

// sshd.c child_reap(), the WIFEXITED branch.
std::optional<PenaltyKind> openssh_exit(int code) {
  switch (code) {
    case 0:
      return std::nullopt;
    case kExitLoginGrace:
      return PenaltyKind::grace_exceeded;
    case kExitChildCrash:
      return PenaltyKind::crash;
    case kExitAuthAttempted:
      return PenaltyKind::authfail;
    case kExitConfigRefused:
      return PenaltyKind::refuse_connection;
    case kExitInvalidUser:
      return PenaltyKind::invalid_user;
    default:
      return PenaltyKind::noauth;
  }
}

}  // namespace

std::string_view to_string(ExitStatusOutcomes table) {
  return table == ExitStatusOutcomes::openssh ? "openssh" : "legacy";
}

std::optional<ExitStatusOutcomes> parse_exit_status_outcomes(std::string_view word) {
  if (word == "openssh") return ExitStatusOutcomes::openssh;
  if (word == "legacy") return ExitStatusOutcomes::legacy;
  return std::nullopt;
}

bool is_crash_signal(int signal) {
  switch (signal) {
    case SIGSEGV:
    case SIGBUS:
    case SIGTRAP:
    case SIGSYS:
    case SIGFPE:
    case SIGILL:
    case SIGABRT:
      return true;
    default:
      return false;
  }
}

std::optional<PenaltyKind> penalty_for(const InstanceEnd& end, ExitStatusOutcomes table) {
  switch (end.how) {
    case InstanceEnd::How::startup_timeout:
      return PenaltyKind::grace_exceeded;
    case InstanceEnd::How::client_gone:
      // What sshd's listener records when its child sees the client go before it
      // authenticated (exit 255): no authentication.
      return PenaltyKind::noauth;
    case InstanceEnd::How::killed:
      if (table == ExitStatusOutcomes::legacy || is_crash_signal(end.code))
        return PenaltyKind::crash;
      return std::nullopt;
    case InstanceEnd::How::exited:
      if (table == ExitStatusOutcomes::legacy) return PenaltyKind::noauth;
      return openssh_exit(end.code);
  }
  return std::nullopt;
}

}  // namespace usherd::policy

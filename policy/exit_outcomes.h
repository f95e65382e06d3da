// Exit outcomes: which penalty an instance that ended before it was ready earns its source
// block, from how it ended. Two tables, chosen per service by X-ExitStatusOutcomes=:
//
//   openssh  OpenSSH 10's listener (sshd.c child_reap(), srclimit.h, misc.c signal_is_crash()),
//            for services that run sshd, whose exit statuses say why a connection ended:
//              exited 0                      no penalty
//              exited 3 (EXIT_LOGIN_GRACE)   grace-exceeded
//              exited 4 (EXIT_CHILD_CRASH)   crash
//              exited 5 (EXIT_AUTH_ATTEMPTED) authfail
//              exited 6 (EXIT_CONFIG_REFUSED) refuseconnection
//              exited 7 (EXIT_INVALID_USER)  invaliduser
//              exited with any other code    noauth
//              killed by SIGSEGV, SIGBUS, SIGTRAP, SIGSYS, SIGFPE, SIGILL or SIGABRT: crash
//              killed by any other signal (SIGTERM, SIGKILL, the OOM killer): no penalty
//   legacy   usherd's rule before OpenSSH 10, for every other service (dropbear, git daemon),
//            whose exit statuses mean nothing to the listener: any exit is noauth, any
//            signal is crash.
// In both tables usherd's own startup timeout (X-StartupTimeoutSec=, it killed the instance)
// is grace-exceeded, as sshd's LoginGraceTime is.
//
// Versions: exit status 7 and invaliduser arrived in OpenSSH 10.3 (10.0, Debian 13's, has no
// status 7, so its sshd exits 255 there and the row is never reached); the table is 10.3's,
// unchanged through 10.5. Like sshd's listener, the caller applies the outcome only to a
// connection that has not authenticated (sshd forgets a child once it reports "auth done").
#pragma once

#include <optional>
#include <string_view>

#include "policy/penalties.h"

namespace usherd::policy {

/// How an instance ended, as the supervisor saw it.
struct InstanceEnd {
  /// What ended it.
  enum class How {
    exited,           ///< It called exit(code).
    killed,           ///< A signal killed it (whoever sent it, usherd included).
    startup_timeout,  ///< usherd killed it for not becoming ready in time.
    client_gone,      ///< usherd ended it because its client hung up before it was ready.
  };

  How how = How::exited;  ///< What ended it.
  int code = 0;           ///< The exit status (exited) or the signal number (killed).

  /// Exited with status code.
  static InstanceEnd exited(int code) { return {How::exited, code}; }
  /// Killed by signal.
  static InstanceEnd killed(int signal) { return {How::killed, signal}; }
  /// Killed by usherd at its startup deadline.
  static InstanceEnd startup_timeout() { return {How::startup_timeout, 0}; }
  /// Ended by usherd because its client had gone before it was ready.
  static InstanceEnd client_gone() { return {How::client_gone, 0}; }

  /// Equal when both fields are.
  friend bool operator==(const InstanceEnd&, const InstanceEnd&) = default;
};

/// Which table maps an end to a penalty (X-ExitStatusOutcomes=).
enum class ExitStatusOutcomes {
  legacy,   ///< Any exit noauth, any signal crash.
  openssh,  ///< OpenSSH 10's child_reap() table.
};

/// "legacy" or "openssh".
std::string_view to_string(ExitStatusOutcomes table);

/// The table named word ("legacy", "openssh"); nullopt for any other word.
std::optional<ExitStatusOutcomes> parse_exit_status_outcomes(std::string_view word);

/// True for the signals OpenSSH counts as a crash (misc.c signal_is_crash()).
bool is_crash_signal(int signal);

/// The penalty an instance that ended before it was ready earns its block under table;
/// nullopt for none.
std::optional<PenaltyKind> penalty_for(const InstanceEnd& end, ExitStatusOutcomes table);

}  // namespace usherd::policy

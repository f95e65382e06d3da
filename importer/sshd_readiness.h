// The readiness setup an imported OpenSSH `sshd -i` gets, so that usherd's global startup
// budget (MaxStartups) sees each connection's authentication.
//
// Under xinetd or launchd an sshd started per connection only ever sees itself, and its own
// MaxStartups protects nothing; usherd counts a connection as a startup until the instance
// signals readiness. usherd offers two signals (README "Readiness"): X-ReadyLog= on sshd's
// stderr, or a PAM session line running `usherctl notify --ready`. The import chooses
// X-ReadyLog=, because it is complete inside the two generated units: the PAM setup needs a
// file in /etc/pam.d and sshd started under that PAM service name, and a unit that depends on
// a file the import does not install would either fail every login or be skipped. The
// generated service says so and points to the PAM setup for hostile networks.
#pragma once

#include "importer/unit_plan.h"

namespace usherd::importer {

/// True when the command runs OpenSSH's sshd once per connection (an "sshd" binary with -i).
bool is_sshd_per_connection(const ExecLine& exec);

/// Adds the readiness setup to an Accept=yes plan running sshd -i: sshd logs to stderr (-e),
/// its log goes to usherd's log, a record beginning with sshd's "Accepted ..." line ends the
/// startup, sshd's privilege-separation directory exists, the exit status 255 sshd -i ends
/// every session with is not a failure, and a refused client hears sshd's own words.
void add_sshd_readiness(UnitPlan& plan);

}  // namespace usherd::importer

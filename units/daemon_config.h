// usherd.conf: the global admission policy and the metrics listener, in unit-file syntax.
//
//   [Policy]  MaxStartups=10:30:100  PerSourceMaxStartups=none  PerSourceNetBlockSize=32:128
//             StartupTimeoutSec=120s  ExemptSources=  ReservedStartups=2
//             PerSourcePenalties=  PerSourcePenaltyExemptList=
//             WaitingRoom=yes  MaxParked=1000  PerSourceMaxParked=100  MaxParkedWait=8s
//   [Metrics] ListenStream=   (off unless set)
//
// Every setting has a built-in default, so no file is needed. Unlike a unit's bad value, a
// bad value here is an error: silently running a flood defence with a default the
// administrator tried to change is worse than refusing the file (on reload the previous
// configuration stays; at start usherd does not start).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "units/config.h"
#include "units/diagnostic.h"

namespace usherd::units {

/// The result of parsing usherd.conf.
struct DaemonConfigResult {
  DaemonConfig config;  ///< Defaults with every valid setting applied.
  bool ok = true;       ///< False when any value was rejected.
};

/// Parses usherd.conf given as text (path is used for diagnostics and DaemonConfig::path).
DaemonConfigResult parse_daemon_config(std::string_view text, const std::string& path,
                                       std::vector<Diagnostic>& diagnostics);

}  // namespace usherd::units

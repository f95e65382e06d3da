// Condition*= and Assert*= evaluation (systemd.unit(5), "Conditions and Asserts").
//
// Checked once at load time with stat() and friends. A condition prefixed '!' is negated; one
// prefixed '|' is a triggering condition: the unit runs if every non-triggering condition
// holds and, when there are triggering ones, at least one of them does. A failed condition
// skips the unit (a notice); a failed assert refuses it (an error). Condition kinds usherd
// cannot evaluate are reported and assumed to hold.
#pragma once

#include <string>
#include <vector>

#include "units/config.h"
#include "units/diagnostic.h"

namespace usherd::units {

/// The outcome of checking a unit's conditions and asserts.
struct ConditionResult {
  bool conditions_hold = true;  ///< False: skip the unit.
  bool asserts_hold = true;     ///< False: refuse the unit.
  std::string reason;           ///< The first failing line ("ConditionPathExists=!/x"), or why.
};

/// True when usherd knows how to evaluate this condition type ("PathExists", …).
bool is_supported_condition(const std::string& type);

/// Evaluates conditions against the file system; unsupported kinds are warned about in sink.
ConditionResult check_conditions(const std::vector<Condition>& conditions, DiagnosticSink& sink);

}  // namespace usherd::units

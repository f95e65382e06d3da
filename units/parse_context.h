// ParseContext: what every typed key parser needs — the unit's name for specifiers, the
// diagnostics, and systemd's uniform wording for a value that is ignored.
//
// Invariant: every message about an entry names the entry's own file and line (a drop-in's
// when it came from a drop-in), and every ignored value is reported exactly once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "units/config.h"
#include "units/diagnostic.h"
#include "units/unit_file.h"
#include "units/unit_name.h"

namespace usherd::units {

/// Shared state of one unit's parse.
struct ParseContext {
  const UnitName& unit;        ///< The unit being parsed (specifiers come from it).
  DiagnosticSink& sink;        ///< Where findings go.
  bool uses_instance = false;  ///< Set when a value used an instance specifier.

  /// The entry's value with specifiers expanded; warns and returns nullopt on failure.
  std::optional<std::string> expand(const Entry& entry);
  /// "Failed to parse Key= value, ignoring: value (reason)".
  void invalid(const Entry& entry, std::string_view reason);
  /// "Key=value is not supported by usherd, ignoring."
  void unsupported_value(const Entry& entry);
  /// "Unknown key name 'Key' in section 'Section', ignoring." (silent for X- keys).
  void unknown_key(const Entry& entry);
  /// "Key= is not enforced by usherd, ignoring."
  void not_enforced(const Entry& entry);
  /// Parses a boolean value, or warns and returns nullopt.
  std::optional<bool> boolean(const Entry& entry);
};

/// Handles an entry of [Unit] or [Install] for any unit type; false if the key is unknown.
bool apply_unit_entry(UnitInfo& info, const Entry& entry, ParseContext& context);

/// True for sandboxing keys of systemd.exec(5) that usherd parses but does not enforce.
bool is_sandboxing_key(std::string_view key);

}  // namespace usherd::units

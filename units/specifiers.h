// Specifier expansion in unit-file values (systemd.unit(5), "SPECIFIERS").
//
// Supported: %n full name, %N name without suffix, %p prefix, %P unescaped prefix, %i
// instance, %I unescaped instance, %j last '-' component of the prefix, %J its unescaped form,
// %f "/" + unescaped instance (or prefix), %t /run, %T /tmp, %V /var/tmp, %S /var/lib,
// %C /var/cache, %L /var/log, %E /etc, %% a literal '%'. usherd runs as the system manager
// does, so the directories are the system ones. Anything else is an error, as systemd reports
// it ("Failed to resolve specifiers"). Expansion records whether the result depends on the
// instance, so a template whose values never mention it is instantiated by copying.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "units/unit_name.h"

namespace usherd::units {

/// Expands specifiers in text for unit; sets *uses_instance when an instance-dependent
/// specifier (%i %I %n %N %f) was used.
Result<std::string> expand_specifiers(std::string_view text, const UnitName& unit,
                                      bool* uses_instance = nullptr);

}  // namespace usherd::units

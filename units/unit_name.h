// Unit names (systemd.unit(5)): "ssh.socket", templates "ssh@.service" and instances
// "ssh@3-127.0.0.1:22-127.0.0.1:51234.service".
//
// A name is prefix[@instance].suffix with at most 255 characters from [A-Za-z0-9:_.\-@]
// (plus '\' for escapes); a template has the '@' and an empty instance. Escaping is systemd's
// unit_name_escape(): '/' is written '-', other unsafe bytes "\xNN"; unescaping reverses it and
// is what %I and %P give.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace usherd::units {

/// A unit name split into its parts.
struct UnitName {
  std::string name;      ///< The whole name: "ssh@3-….service".
  std::string prefix;    ///< Before '@' (or before the suffix): "ssh".
  std::string instance;  ///< After '@', before the suffix; empty for templates and plain units.
  std::string suffix;    ///< The type without the dot: "service", "socket".
  bool has_at = false;   ///< True for templates and instances.

  /// True for "foo@.service".
  bool is_template() const { return has_at && instance.empty(); }
  /// True for "foo@bar.service".
  bool is_instance() const { return has_at && !instance.empty(); }
  /// "foo@.service" for an instance or template, the name itself otherwise.
  std::string template_name() const;
  /// The name with instance substituted: "foo@" + instance + ".suffix".
  std::string with_instance(std::string_view new_instance) const;
};

/// Parses and validates a unit name; nullopt when it is not one.
std::optional<UnitName> parse_unit_name(std::string_view name);

/// Reverses systemd's unit-name escaping: '-' becomes '/', "\xNN" the byte.
std::string unit_name_unescape(std::string_view text);

}  // namespace usherd::units

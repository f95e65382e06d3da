// Loading the whole configuration: unit directories, drop-ins, conditions, usherd.conf.
//
// Unit directories form a search path, as systemd's: for one unit name the first directory
// that has the file wins (an empty file or a symlink to /dev/null there masks the unit), and
// drop-ins "NAME.d/*.conf" (for templates and instances also "PREFIX@.SUFFIX.d/") are
// collected from every directory, a same-named drop-in in an earlier directory hiding later
// ones, and applied in lexical order of their file names. Files that are not .socket or
// .service units are skipped. Every problem is a Diagnostic; one broken unit never stops the
// others from loading. Loading reads files and stat()s paths, nothing else.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "units/config.h"
#include "units/diagnostic.h"
#include "units/exec_command.h"

namespace usherd::units {

/// Everything usherd runs from, as loaded at one moment.
struct Configuration {
  DaemonConfig daemon;                          ///< usherd.conf (or the defaults).
  std::vector<SocketUnit> sockets;              ///< Loaded sockets, in name order.
  std::map<std::string, ServiceUnit> services;  ///< Loaded services by name (templates too).
  std::vector<Diagnostic> diagnostics;          ///< Every finding, in the order found.
  bool daemon_config_ok = true;                 ///< False: usherd.conf unreadable or invalid.
  unsigned failed_units = 0;                    ///< Units refused with an error.
};

/// Loads units from unit_dirs (earlier directories win) and config_file (nullopt: built-in
/// defaults; a path that cannot be read is an error).
Configuration load_configuration(const std::vector<std::string>& unit_dirs,
                                 const std::optional<std::string>& config_file);

/// The service for one instance of a template, with %i %I %n %N %j (and every other
/// specifier) applied for that instance. Copies the template when it uses no instance
/// specifier (template_unit.uses_instance_specifiers is false); otherwise re-parses its
/// entries, reading no file the template did not already read.
ServiceUnit instantiate(const ServiceUnit& template_unit, std::string_view instance,
                        std::vector<Diagnostic>& diagnostics);

/// One line for `usherd --check`:
/// "ssh.socket: listen 127.0.0.1:2222 accept=yes service=ssh@.service".
std::string check_summary(const SocketUnit& socket);

/// The readiness warning for a service used per connection that declares no readiness
/// signal, or nullopt when it declares one.
std::optional<Diagnostic> readiness_warning(const ServiceUnit& service);

/// For a service used per connection (Accept=yes): which of its commands a connection does not
/// run (ExecStartPre=, ExecStart= after the first, ExecStartPost=), or nullopt when none.
std::optional<Diagnostic> per_connection_commands_warning(const ServiceUnit& service);

}  // namespace usherd::units

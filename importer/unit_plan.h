// UnitPlan: the socket + service pair an import produces, before it is written as text.
//
// Both importers fill a UnitPlan; render_units() turns it into a .socket and a .service file
// (NAME.socket + NAME@.service for Accept=yes, NAME.socket + NAME.service otherwise), with a
// header comment that lists everything not carried over. Every value is encoded for the unit
// syntax here (quoting, C escapes, "%%" for specifiers, "$$" in command lines), and the result
// is parsed back with the real unit parser from units/: a pair that does not load without a
// diagnostic, or whose command line or environment differ from the plan, is an error, never
// output.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "importer/finding.h"

namespace usherd::importer {

/// The command line of ExecStart=.
struct ExecLine {
  std::string path;                  ///< The executable: absolute, or a bare name.
  std::optional<std::string> argv0;  ///< argv[0] when it is not path (written with '@').
  std::vector<std::string> args;     ///< argv[1...], exactly as the program receives them.
  bool ignore_failure = false;       ///< '-': a failing exit status is not a failure.
  std::string comment;               ///< Written as "# ..." lines before ExecStart=.
};

/// One "Key=Value" line, the value already in unit syntax.
struct Setting {
  std::string key;      ///< "ListenStream".
  std::string value;    ///< "127.0.0.1:79".
  std::string comment;  ///< Written as "# ..." lines before the setting; may hold '\n'.
};

/// A socket unit and its service, as data.
struct UnitPlan {
  std::string stem;                      ///< Unit name without suffix: "finger".
  std::string description;               ///< Description= of both units.
  std::string origin;                    ///< First header line: where the import came from.
  bool accept = false;                   ///< Accept=.
  std::vector<Setting> socket;           ///< [Socket] lines after Listen*= and Accept=.
  ExecLine exec;                         ///< ExecStart=.
  std::vector<std::string> environment;  ///< Environment= assignments "K=V", in order.
  std::vector<Setting> service;          ///< [Service] lines after ExecStart= and Environment=.

  /// Appends a [Socket] line.
  void add_socket(std::string key, std::string value, std::string comment = {});
  /// Appends a [Service] line.
  void add_service(std::string key, std::string value, std::string comment = {});
  /// Sets K=V, replacing an earlier assignment of K.
  void set_environment(std::string_view name, std::string_view value);
  /// True when a [Service] line with this key exists.
  bool has_service(std::string_view key) const;
  /// Removes every [Service] line with this key.
  void remove_service(std::string_view key);
};

/// "NAME.socket".
std::string socket_unit_name(const UnitPlan& plan);
/// "NAME@.service" for Accept=yes, else "NAME.service".
std::string service_unit_name(const UnitPlan& plan);

/// A unit-name stem from a free-form name (xinetd service id, launchd Label): characters a
/// unit name may hold are kept, others become '_'; nullopt when nothing usable is left.
std::optional<std::string> unit_stem(std::string_view name);

/// A plain value (User=, WorkingDirectory=, a Listen path): '%' doubled; an error for what a
/// unit line cannot carry (control characters, leading or trailing blanks).
Result<std::string> plain_value(std::string_view text);
/// One Environment= word "K=V", quoted and escaped as needed.
std::string environment_word(std::string_view assignment);

/// The two unit files of the plan. findings are the job's findings so far: its warnings are
/// listed in the header of both files. Fails when the plan cannot be written faithfully.
Result<std::vector<UnitFile>> render_units(const UnitPlan& plan,
                                           const std::vector<Finding>& findings);

}  // namespace usherd::importer

// Environment=, EnvironmentFile= and the "K=V" lists they build (systemd.exec(5)).
//
// Environment= values are words (quotes and C escapes resolved) that must each be a valid
// assignment. EnvironmentFile= contents use the shell-like syntax of systemd's
// load_env_file(): "KEY=VALUE" lines, '#'/';' comment lines, single quotes literal, double
// quotes with \" \\ \$ \` escapes, a backslash outside quotes escaping the next character and
// backslash-newline continuing the value, unquoted trailing whitespace dropped. Lists are
// ordered and hold each name once: a later assignment replaces the earlier one in place.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace usherd::units {

/// True for a valid variable name: [A-Za-z_][A-Za-z0-9_]*.
bool is_valid_environment_name(std::string_view name);

/// True for "NAME=value" with a valid name.
bool is_valid_environment_assignment(std::string_view assignment);

/// The value of name in a "K=V" list (the last assignment; a view into the list), or nullopt.
std::optional<std::string_view> find_environment(const std::vector<std::string>& environment,
                                                 std::string_view name);

/// Sets assignment ("K=V") in list: replaces an existing K in place, else appends.
void set_environment(std::vector<std::string>& list, std::string assignment);

/// What an environment file holds: its assignments, and the lines that were not assignments.
struct EnvironmentFileContents {
  std::vector<std::string> assignments;  ///< "K=V" in file order (a later K replaces).
  std::vector<unsigned> invalid_lines;   ///< 1-based lines that were ignored.
};

/// Parses the contents of an EnvironmentFile=.
EnvironmentFileContents parse_environment_file(std::string_view text);

}  // namespace usherd::units

// ExecStart= and friends: command lines as systemd.service(5) "COMMAND LINES" defines them.
//
// Parsing (at load time): the first word may carry the prefixes '-', '@', ':', '+', '!' and
// '!!' in any order, each once ('+' excludes '!'); words are unquoted and C-unescaped; a lone
// ';' separates commands on one line and "\;" is a literal ';'. The executable is an absolute
// normalized path or a bare file name (resolved against the fixed search path elsewhere).
//
// Expansion (per spawn, expand_exec_argv): "$VAR" as a whole word becomes the value split at
// whitespace (quotes respected; unset or empty gives no word); "${VAR}" anywhere in a word is
// replaced by the value as one piece (unset: empty); "$$" is a literal '$'; a '$' before
// anything else stays. The executable path is never expanded, and ':' disables expansion.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "units/config.h"

namespace usherd::units {

/// Parses one ExecStart= value (specifiers already expanded) into one or more commands.
Result<std::vector<ExecCommand>> parse_exec_value(std::string_view value);

/// The argv to exec for command under environment ("K=V" entries, later ones win).
Result<std::vector<std::string>> expand_exec_argv(const ExecCommand& command,
                                                  const std::vector<std::string>& environment);

}  // namespace usherd::units

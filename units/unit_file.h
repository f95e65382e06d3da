// The line syntax shared by unit files and usherd.conf (systemd.syntax(7)).
//
// A file is a sequence of "[Section]" headers and "Key=Value" assignments; lines starting
// with '#' or ';' are comments; a line ending in an odd number of backslashes continues on
// the next (the backslash becomes a space, and comment lines inside a continuation are
// dropped, as systemd's config_parse() does). Keys and values are stripped of surrounding
// whitespace; nothing else is interpreted here, because quoting and escapes are applied per
// key by the typed parsers. The result is a flat list of entries, so a unit's drop-ins are
// applied by appending their entries after the main file's, in order, and an empty
// assignment in a drop-in resets what came before it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "units/diagnostic.h"

namespace usherd::units {

/// One "Key=Value" assignment with where it was written.
struct Entry {
  std::string section;  ///< Section name without brackets ("Service").
  std::string key;      ///< Key as written ("ExecStart").
  std::string value;    ///< Value, whitespace-stripped, continuation lines joined.
  std::string file;     ///< The file it came from (main unit file or a drop-in).
  unsigned line = 0;    ///< Line where the assignment ended.
};

/// Parses text (the contents of file) into entries. Assignments in sections not listed in
/// known_sections are dropped: silently for "X-" sections, with a warning otherwise.
std::vector<Entry> parse_unit_text(std::string_view text, const std::string& file,
                                   const std::vector<std::string_view>& known_sections,
                                   std::vector<Diagnostic>& diagnostics);

}  // namespace usherd::units

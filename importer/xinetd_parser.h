// The syntax of xinetd.conf(5), read the way xinetd 2.3 reads it (parse.c, parsesup.c).
//
// A file is a sequence of entries: "defaults" or "service NAME", each followed by a line
// holding only '{', attribute lines "name OP value value ..." (OP is '=', '+=' or '-=', with
// a blank before it; values are split at blanks, with no quoting), and a line holding only
// '}'. "include FILE" and "includedir DIR" may appear between entries (a relative path is
// taken from the including file's directory); includedir reads every regular file of DIR in
// C-locale order except names containing '.' or ending in '~'. A line
// whose first non-blank character is '#' is a comment; '#' elsewhere is part of a value
// (xinetd_resolve.cpp says what xinetd then makes of the line). A UTF-8 byte order mark at
// the start of a file is dropped with a warning: xinetd does not know it, but no author
// meant it as text.
//
// As in xinetd, a malformed line spoils only its own entry: the entry is reported with the
// file and line of the fault and skipped up to the next line holding only '}', and the rest
// is read. A "service NAME" line passed over by such a skip becomes a spoiled entry of its
// own, so a service xinetd never reads is reported by name instead of vanishing. This layer
// knows no attribute meanings; xinetd_resolve.cpp and xinetd_map.cpp apply them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "importer/finding.h"
#include "importer/system.h"

namespace usherd::importer {

/// '=', '+=' or '-='.
enum class AssignOp { set, add, remove };

/// One attribute line of an entry.
struct XinetdAttribute {
  std::string name;                 ///< "server_args".
  AssignOp op = AssignOp::set;      ///< The operator.
  std::vector<std::string> values;  ///< The blank-separated values (possibly none).
  std::string file;                 ///< Where it was written.
  unsigned line = 0;                ///< Its line.

  /// "name = v1 v2" as written (values joined by one space).
  std::string text() const;
};

/// A defaults or service entry.
struct XinetdEntry {
  bool is_defaults = false;                 ///< "defaults" rather than "service NAME".
  std::string name;                         ///< The service name (empty for defaults).
  std::string file;                         ///< Where the entry starts.
  unsigned line = 0;                        ///< The line of "service NAME" / "defaults".
  std::vector<XinetdAttribute> attributes;  ///< In file order.
  std::vector<Finding> errors;              ///< Syntax errors that spoiled the entry.
};

/// Everything read from a set of files, includes followed.
struct XinetdConfig {
  std::vector<XinetdEntry> entries;  ///< In reading order, spoiled ones included.
  std::vector<Finding> findings;     ///< Errors outside entries, unreadable files.
};

/// Reads files (a file, or a directory read as includedir would) in order, into one
/// configuration, as if they were included one after the other.
XinetdConfig read_xinetd(const std::vector<std::string>& paths, const System& system);

/// Parses one file's text (includes are read through system); appends to config.
void parse_xinetd_text(std::string_view text, const std::string& path, const System& system,
                       XinetdConfig& config);

}  // namespace usherd::importer

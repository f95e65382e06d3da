// usherctl import: xinetd and launchd configurations as usherd unit files.
//
// import_xinetd() reads xinetd.conf(5) files (includes followed; a directory is read as
// includedir reads it) and import_launchd() launchd.plist(5) XML property lists; both return
// a Report with, per service or job, the generated .socket + .service pair or the reasons it
// could not be imported. Nothing is written until the caller decides: write_units() puts the
// files in a directory (never over an existing file), print_units() gives them as one text.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "importer/finding.h"
#include "importer/system.h"
#include "importer/xinetd_parser.h"

namespace usherd::importer {

/// Imports xinetd configuration files, read as one configuration in the order given.
Report import_xinetd(const std::vector<std::string>& paths, const Options& options,
                     const System& system = real_system());

/// Imports an already parsed xinetd configuration.
Report import_xinetd_config(const XinetdConfig& config, const Options& options,
                            const System& system = real_system());

/// Imports launchd property lists, one job each.
Report import_launchd(const std::vector<std::string>& paths, const Options& options,
                      const System& system = real_system());

/// Imports one launchd property list given as text (path names it in findings).
Job import_launchd_text(std::string_view text, const std::string& path, const Options& options,
                        const System& system = real_system());

/// Writes every generated unit into dir (which must exist), mode 0644. Refuses, writing
/// nothing, when a unit file already exists there. Returns the paths written.
Result<std::vector<std::string>> write_units(const Report& report, const std::string& dir);

/// Every generated unit as one text, each file introduced by a "### NAME" line.
std::string print_units(const Report& report);

}  // namespace usherd::importer

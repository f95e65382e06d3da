// The attributes of one xinetd service after xinetd's rules for defaults and operators, and
// the mapping of such a service to a usherd socket + service pair.
//
// Resolution follows xinetd 2.3 (parse.c, confparse.c): a service entry starts with copies
// of the list attributes of the defaults entry read so far (only_from, no_access, passenv,
// log_on_success, log_on_failure), which its own '=' replaces and '+=' / '-=' modify; in the
// defaults entry '=' adds as '+=' does. Single-valued attributes may be set once (a second
// setting is ignored, with a warning); those the defaults entry may carry (instances,
// per_source, umask, cps, bind, groups, v6only, banners, ...) apply when the service sets none.
// A line with the wrong number of values is ignored with a warning, as xinetd does
// (parse.c identify_attribute()): the usual cause is a "# comment" after the value, which
// xinetd.conf does not have, and the warning names it. A log_on_success / log_on_failure
// word that is not a flag (such a '#', again) fails the line: xinetd disables the service,
// and exits when the line is in the defaults entry; both are errors.
// "disabled" / "enabled" in defaults switch services off by id.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "importer/finding.h"
#include "importer/system.h"
#include "importer/xinetd_parser.h"

namespace usherd::importer {

/// One operation on a list attribute: the line, and the operator it acts with.
struct ListOp {
  const XinetdAttribute* attribute = nullptr;  ///< The line.
  AssignOp op = AssignOp::set;                 ///< '=' in defaults acts as '+='.
};

/// A line xinetd reads and ignores, and why.
struct IgnoredLine {
  const XinetdAttribute* attribute = nullptr;  ///< The line.
  std::string why;                             ///< "bind takes 1 value, not 3".
};

/// A service entry with its defaults applied.
struct XinetdService {
  const XinetdEntry* entry = nullptr;                      ///< The service entry.
  std::map<std::string, const XinetdAttribute*> own;       ///< Its single-valued attributes.
  std::map<std::string, const XinetdAttribute*> defaults;  ///< Those from defaults.
  std::map<std::string, std::vector<ListOp>> lists;        ///< List attributes, in order.
  const XinetdAttribute* disabled_by_defaults = nullptr;   ///< "disabled"/"enabled" line.
  /// A bind / interface line (the service's, else the defaults') that xinetd ignores for its
  /// number of values: without another bind, xinetd listens on every address.
  std::optional<IgnoredLine> ignored_bind;
  std::vector<Finding> findings;  ///< Found while resolving.

  /// The service's own setting, else the one from defaults (nullptr when neither).
  const XinetdAttribute* get(const std::string& name) const;
  /// The service id: its "id" attribute, else its name.
  std::string id() const;
};

/// Every service entry of the configuration, resolved. Findings about the defaults entries
/// go to file_findings.
std::vector<XinetdService> resolve_xinetd_services(const XinetdConfig& config,
                                                   std::vector<Finding>& file_findings);

/// What /etc/hosts.allow and /etc/hosts.deny hold: the first rule line, if any.
struct TcpWrappers {
  std::string file;   ///< The file with a rule (empty when there is none).
  unsigned line = 0;  ///< Its line.
};

/// Looks for rule lines in /etc/hosts.allow and /etc/hosts.deny, which xinetd built with
/// libwrap (Debian's is) applies to every service without the NOLIBWRAP flag.
TcpWrappers find_tcp_wrappers_rules(const System& system);

/// Maps one resolved service to units, or says why it cannot be imported.
Job map_xinetd_service(const XinetdService& service, const Options& options, const System& system,
                       const TcpWrappers& wrappers);

}  // namespace usherd::importer

// Credentials: the user, primary group and supplementary groups a service runs as.
//
// Resolved once, at load time, through NSS (getpwnam_r, getgrnam_r, getgrouplist), because
// NSS may block on the network (LDAP, sssd) and must never run per connection or in the
// child of a spawn. The child receives only the raw numbers.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace usherd::activation {

/// Raw ids and account facts for a spawn, resolved before any connection arrives.
struct Credentials {
  uid_t uid = 0;              ///< the user id (setresuid)
  gid_t gid = 0;              ///< the primary group id (setresgid)
  std::vector<gid_t> groups;  ///< supplementary groups (setgroups), primary included
  std::string home;           ///< the passwd home directory ("" for a bare numeric uid)
  std::string shell;          ///< the passwd shell ("" for a bare numeric uid)
  std::string user;           ///< the user name (the number as text when unknown to NSS)
};

/// Resolves User=, Group= and SupplementaryGroups= (names or decimal ids). An empty group
/// means the user's primary group; a user's own groups from the group database are included
/// (as initgroups does) when the user is known by name to NSS.
Result<Credentials> resolve_credentials(std::string_view user, std::string_view group,
                                        const std::vector<std::string>& supplementary);

}  // namespace usherd::activation

// System: everything an import asks of the machine it runs on, behind one interface.
//
// xinetd resolves service names through /etc/services, network names through /etc/networks
// and host names through the resolver when it reads its configuration; an import does the same
// once, at import time. Files and directories are read through here too, so tests can give
// fixed answers and the fuzzer never touches the disk or the network. The real implementation
// uses the reentrant NSS calls (getservbyname_r, getnetbyname_r, getaddrinfo, getpwnam_r,
// getgrouplist).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "policy/address.h"

namespace usherd::importer {

/// What an import needs from the machine.
class System {
 public:
  virtual ~System() = default;

  /// The whole file.
  virtual Result<std::string> read_file(const std::string& path) const;
  /// The entry names of a directory (without "." and ".."), in no particular order.
  virtual Result<std::vector<std::string>> list_directory(const std::string& path) const;
  /// True for a directory (following symlinks).
  virtual bool is_directory(const std::string& path) const;
  /// True for a regular file (following symlinks).
  virtual bool is_regular_file(const std::string& path) const;
  /// The port of a service name for "tcp" or "udp" in /etc/services, as getservbyname(3).
  virtual std::optional<std::uint16_t> service_port(const std::string& name,
                                                    const std::string& protocol) const;
  /// The IPv4 network of a name in /etc/networks (getnetbyname(3)), with the prefix length
  /// xinetd derives from the size of the network number.
  virtual std::optional<policy::Cidr> network(const std::string& name) const;
  /// The numeric addresses of a host name (getaddrinfo(3)); v4_only/v6_only narrow the family.
  virtual std::vector<policy::IpAddress> resolve_host(const std::string& name, bool v4_only,
                                                      bool v6_only) const;
  /// Whether the user is in any group besides its primary one (getgrouplist(3)); nullopt when
  /// the user is unknown.
  virtual std::optional<bool> has_supplementary_groups(const std::string& user) const;
};

/// The machine usherctl runs on.
const System& real_system();

}  // namespace usherd::importer

// xinetd's only_from / no_access addresses as networks, and the set arithmetic that turns
// xinetd's access rule into systemd's IPAddressAllow= / IPAddressDeny=.
//
// xinetd (addr.c) accepts, tried in this order: a numeric address, where trailing zero octets
// of an IPv4 address are wildcards (128.138.12.0 is 128.138.12.0/24, 0.0.0.0 every IPv4
// address) and an IPv6 address is one host; a host name or ".domain" (matched against a
// reverse lookup of each client); "address/prefix"; a factorized IPv4 address
// "128.138.{200,201}" (each value becomes a network of the octet it fills); a network name from
// /etc/networks. Host names and domains cannot be expressed with addresses: such an entry is
// marked unexpressible and the caller decides (fail, or drop it with --allow-open). A word
// none of these parsers takes is logged and skipped by xinetd (addrlist_op()); it is marked
// skipped, and the caller refuses the service by default, since skipping a no_access word
// widens access and an only_from word was meant to admit someone.
//
// Rule semantics differ: xinetd refuses a client matched by no_access, and with an only_from
// list refuses a client it does not match (access.c, remote_address_check); systemd allows a
// client matched by IPAddressAllow= whatever IPAddressDeny= says. So only_from with no_access
// becomes IPAddressAllow = only_from minus no_access, IPAddressDeny = any.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "importer/system.h"
#include "policy/address.h"

namespace usherd::importer {

/// One only_from / no_access value.
struct AddressEntry {
  std::string text;                    ///< As written.
  std::vector<policy::Cidr> networks;  ///< What it matches, when expressible.
  std::string unexpressible;           ///< Why it cannot be expressed (empty when it can).
  std::string skipped;                 ///< Why xinetd cannot parse it (empty when it can).
};

/// Parses one value; an error for a malformed value (xinetd disables such a service). A word
/// that none of xinetd's address parsers takes (a '#', a mistyped address) is not an error
/// in xinetd, which logs it and skips the word: such an entry comes back with `skipped` set.
Result<AddressEntry> parse_xinetd_address(std::string_view text, const System& system);

/// The networks of from that are not inside any network of holes, as a list of networks
/// (a hole inside a network splits it into at most prefix-length pieces). Fails when the
/// result would exceed limit networks.
Result<std::vector<policy::Cidr>> subtract_networks(const std::vector<policy::Cidr>& from,
                                                    const std::vector<policy::Cidr>& holes,
                                                    std::size_t limit = 4096);

/// The networks in a list joined by spaces, as IPAddressAllow= takes them.
std::string join_networks(const std::vector<policy::Cidr>& networks);

}  // namespace usherd::importer

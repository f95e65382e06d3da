// IP addresses, CIDR prefixes and source blocks: the vocabulary of every per-source rule.
//
// IpAddress holds an IPv4 or IPv6 address in 16 bytes (IPv4 uses the first four, the rest are
// zero), so addresses compare, order and hash without allocation. Addresses are kept as given:
// an IPv4-mapped IPv6 peer (::ffff:a.b.c.d, what a dual-stack listener yields) stays IPv6 until
// unmapped() is called; the admission engine unmaps every peer before applying a rule.
//
// Cidr is an address and a prefix length; the address is stored with its host bits cleared, so
// two spellings of one network compare equal. Cidr::parse_list_element also accepts systemd's
// IPAddressAllow=/IPAddressDeny= words (systemd.resource-control(5)): "any", "localhost",
// "link-local" and "multicast", each of which names one network per family, hence a vector.
//
// NetBlockSize is OpenSSH's PerSourceNetBlockSize= (sshd_config(5)): the prefix lengths that
// group sources into blocks for PerSourceMaxStartups= and PerSourcePenalties=.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/parse_result.h"

namespace usherd::policy {

/// Address family of an IpAddress.
enum class Family : std::uint8_t { v4, v6 };

/// An IPv4 or IPv6 address (no port, no scope).
class IpAddress {
 public:
  /// 16 bytes in network order; IPv4 uses bytes 0..3.
  using Bytes = std::array<std::uint8_t, 16>;

  /// 0.0.0.0.
  IpAddress() = default;

  /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no brackets, no "%scope").
  static ParseResult<IpAddress> parse(std::string_view text);
  /// An IPv4 address from its host-order 32-bit value (0x7f000001 is 127.0.0.1).
  static IpAddress from_v4(std::uint32_t host_order);
  /// An IPv6 address from its 16 network-order bytes.
  static IpAddress from_v6(const Bytes& bytes);

  /// True for IPv4.
  bool is_v4() const { return family_ == Family::v4; }
  /// True for IPv6.
  bool is_v6() const { return family_ == Family::v6; }
  /// The family.
  Family family() const { return family_; }
  /// 32 for IPv4, 128 for IPv6.
  unsigned bit_length() const { return is_v4() ? 32 : 128; }
  /// The raw bytes (network order; IPv4 in bytes 0..3, the rest zero).
  const Bytes& bytes() const { return bytes_; }
  /// The IPv4 value in host order; precondition is_v4().
  std::uint32_t v4_host_order() const;

  /// True for ::ffff:a.b.c.d.
  bool is_v4_mapped() const;
  /// a.b.c.d for ::ffff:a.b.c.d, otherwise the address unchanged.
  IpAddress unmapped() const;
  /// The address with every bit after the first prefix_length cleared (clamped to the family).
  IpAddress masked(unsigned prefix_length) const;

  /// Canonical text: "192.0.2.1", "2001:db8::1" (RFC 5952), "::ffff:192.0.2.1".
  std::string to_string() const;

  /// Orders IPv4 before IPv6, then by bytes.
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::v4;
  Bytes bytes_{};
};

/// A network: an address with its host bits cleared and a prefix length.
class Cidr {
 public:
  /// 0.0.0.0/0.
  Cidr() = default;
  /// The network of address with prefix_length bits (clamped to the family).
  Cidr(IpAddress address, unsigned prefix_length);

  /// "192.0.2.0/24", "2001:db8::/32", or a bare address (a host: /32 or /128).
  static ParseResult<Cidr> parse(std::string_view text);
  /// One element of IPAddressAllow=: a Cidr or one of any, localhost, link-local, multicast
  /// (each of which yields one IPv4 and one IPv6 network).
  static ParseResult<std::vector<Cidr>> parse_list_element(std::string_view text);

  /// The network address (host bits clear).
  const IpAddress& address() const { return address_; }
  /// The prefix length.
  unsigned prefix_length() const { return prefix_length_; }
  /// True when address has this family and lies in this network; no unmapping is done.
  bool contains(const IpAddress& address) const;
  /// "192.0.2.0/24".
  std::string to_string() const;

  /// Equal when the same network.
  friend auto operator<=>(const Cidr&, const Cidr&) = default;

 private:
  IpAddress address_;
  unsigned prefix_length_ = 0;
};

/// Parses a list such as IPAddressAllow= or PerSourcePenaltyExemptList=: elements separated by
/// whitespace or commas; empty text is an empty list.
ParseResult<std::vector<Cidr>> parse_cidr_list(std::string_view text);

/// True when any network of list contains address.
bool any_contains(const std::vector<Cidr>& list, const IpAddress& address);

/// OpenSSH's PerSourceNetBlockSize=: the prefix lengths that group sources into blocks.
struct NetBlockSize {
  unsigned v4 = 32;   ///< IPv4 prefix length, 0..32.
  unsigned v6 = 128;  ///< IPv6 prefix length, 0..128.

  /// "v4:v6" or "v4" (IPv6 keeps 128), as sshd_config(5).
  static ParseResult<NetBlockSize> parse(std::string_view text);
  /// "32:128".
  std::string to_string() const;
  /// Equal when both lengths are.
  friend bool operator==(const NetBlockSize&, const NetBlockSize&) = default;
};

/// The source block of address: the address masked to the block size of its family.
IpAddress mask_to_block(const IpAddress& address, const NetBlockSize& block_size);

}  // namespace usherd::policy

/// Hash of an IpAddress, so addresses key unordered containers.
template <>
struct std::hash<usherd::policy::IpAddress> {
  std::size_t operator()(const usherd::policy::IpAddress& address) const noexcept;
};

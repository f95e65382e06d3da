// xinetd access-list addresses and network arithmetic; see access_list.h.
#include "importer/access_list.h"

#include <arpa/inet.h>

#include <algorithm>

namespace usherd::importer {
namespace {

using policy::Cidr;
using policy::IpAddress;

bool is_host_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

// IPv4 text as xinetd's getaddrinfo(AI_NUMERICHOST) takes it: glibc's inet_aton rules, so
// "127.1" and "10" are addresses too.
std::optional<std::uint32_t> parse_v4(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789.xXabcdefABCDEF") != std::string::npos)
    return std::nullopt;
  in_addr a{};
  if (::inet_aton(text.c_str(), &a) == 0) return std::nullopt;
  return ntohl(a.s_addr);
}

// numeric_addr(): trailing zero octets are wildcards; 0.0.0.0 matches every IPv4 address.
Cidr v4_with_implied_mask(std::uint32_t addr) {
  if (addr == 0) return Cidr(IpAddress::from_v4(0), 0);
  unsigned prefix = 32;
  while (prefix > 8 && (addr & ((1u << (32 - prefix + 8)) - 1)) == 0) prefix -= 8;
  return Cidr(IpAddress::from_v4(addr), prefix);
}

std::optional<unsigned> parse_small(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 3) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// factorized_addr(): "a.b.{x,y}" is one network per value, of the octet the braces fill.
Result<std::vector<Cidr>> parse_factorized(std::string_view text) {
  std::size_t open = text.find('{');
  if (open == std::string_view::npos || text.back() != '}' ||
      text.find('{', open + 1) != std::string_view::npos)
    return fail("a factorized address is written a.b.{x,y}");
  std::string_view head = text.substr(0, open);
  if (!head.empty() && head.back() != '.') return fail("'{' must follow a '.'");
  std::uint32_t addr = 0;
  unsigned octets = 0;
  std::size_t start = 0;
  while (start < head.size()) {
    std::size_t dot = head.find('.', start);
    auto octet = parse_small(head.substr(start, dot - start), 255);
    if (!octet) return fail("bad octet in factorized address");
    addr = addr << 8 | *octet;
    ++octets;
    start = dot + 1;
  }
  if (octets > 3) return fail("too many octets before '{'");
  unsigned shift = 24 - 8 * octets;
  addr = octets == 0 ? 0 : addr << (shift + 8);
  std::vector<Cidr> out;
  std::string_view list = text.substr(open + 1, text.size() - open - 2);
  start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    auto value = parse_small(list.substr(start, comma - start), 255);
    if (!value) return fail("bad value in factorized address");
    out.emplace_back(IpAddress::from_v4(addr + (*value << shift)), 32 - shift);
    start = comma + 1;
  }
  return out;
}

IpAddress with_bit_flipped(const IpAddress& address, unsigned bit) {
  IpAddress::Bytes bytes = address.bytes();
  bytes[bit / 8] ^= static_cast<std::uint8_t>(0x80u >> (bit % 8));
  if (address.is_v6()) return IpAddress::from_v6(bytes);
  return IpAddress::from_v4(static_cast<std::uint32_t>(bytes[0]) << 24 |
                            static_cast<std::uint32_t>(bytes[1]) << 16 |
                            static_cast<std::uint32_t>(bytes[2]) << 8 | bytes[3]);
}

bool inside(const Cidr& inner, const Cidr& outer) {
  return outer.prefix_length() <= inner.prefix_length() && outer.contains(inner.address());
}

// addrlist_op(): a word none of xinetd's address parsers takes is logged and skipped.
AddressEntry skipped(AddressEntry entry, std::string why) {
  entry.skipped = std::move(why);
  return entry;
}

}  // namespace

Result<AddressEntry> parse_xinetd_address(std::string_view text, const System& system) {
  AddressEntry entry;
  entry.text = std::string(text);
  if (text.empty()) return fail("empty address");
  bool braces = text.find('{') != std::string_view::npos;
  if (text.find(',') != std::string_view::npos && !braces)
    return fail("address " + entry.text + " has a comma in it");
  std::size_t slash = text.find('/');
  if (!braces && slash == std::string_view::npos) {
    if (text.find(':') != std::string_view::npos) {
      auto ip = IpAddress::parse(text);
      if (!ip || !ip->is_v6()) return skipped(std::move(entry), "not an IPv6 address");
      entry.networks.emplace_back(*ip, 128);
      return entry;
    }
    if (auto v4 = parse_v4(entry.text)) {
      entry.networks.push_back(v4_with_implied_mask(*v4));
      return entry;
    }
    if (!std::all_of(text.begin(), text.end(), is_host_name_char))
      return skipped(std::move(entry), "not an address, network or host name");
    if (text.front() == '.') {
      entry.unexpressible = "a domain pattern needs a reverse lookup of every client";
      return entry;
    }
    // xinetd tries a host name before a network name; a name that is only in /etc/networks
    // does not resolve as a host, so looking at /etc/networks first differs only for names
    // that are both, and spares the import a DNS query per name.
    if (auto net = system.network(entry.text)) {
      entry.networks.push_back(*net);
      return entry;
    }
    entry.unexpressible = "a host name is matched against a reverse lookup of every client";
    return entry;
  }
  if (braces) {
    auto list = parse_factorized(text);
    if (!list) return fail(list.error().message + ": " + entry.text);
    entry.networks = std::move(*list);
    return entry;
  }
  std::string address(text.substr(0, slash));
  auto length = parse_small(text.substr(slash + 1), 128);
  if (!length) return skipped(std::move(entry), "not a prefix length after '/'");
  if (address.find(':') != std::string::npos) {
    auto ip = IpAddress::parse(address);
    if (!ip || !ip->is_v6()) return skipped(std::move(entry), "not an IPv6 network");
    entry.networks.emplace_back(*ip, *length);
    return entry;
  }
  auto v4 = parse_v4(address);
  if (!v4 || *length > 32) return skipped(std::move(entry), "not an IPv4 network");
  entry.networks.emplace_back(IpAddress::from_v4(*v4), *length);
  return entry;
}

Result<std::vector<Cidr>> subtract_networks(const std::vector<Cidr>& from,
                                            const std::vector<Cidr>& holes, std::size_t limit) {
  std::vector<Cidr> pieces;
  for (const Cidr& network : from)
    if (std::find(pieces.begin(), pieces.end(), network) == pieces.end()) pieces.push_back(network);
  for (const Cidr& hole : holes) {
    std::vector<Cidr> next;
    for (const Cidr& piece : pieces) {
      if (piece.address().family() != hole.address().family()) {
        next.push_back(piece);
      } else if (inside(piece, hole)) {
        continue;  // entirely refused
      } else if (inside(hole, piece)) {
        // piece minus hole: for each bit between the two prefixes, the sibling half that
        // does not hold the hole.
        for (unsigned bit = piece.prefix_length(); bit < hole.prefix_length(); ++bit)
          next.emplace_back(with_bit_flipped(hole.address(), bit), bit + 1);
      } else {
        next.push_back(piece);
      }
      if (next.size() > limit)
        return fail("the access list splits into more than " + std::to_string(limit) + " networks");
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::string join_networks(const std::vector<Cidr>& networks) {
  std::string out;
  for (const Cidr& n : networks) out += (out.empty() ? "" : " ") + n.to_string();
  return out;
}

}  // namespace usherd::importer

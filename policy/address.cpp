// Parsing, formatting and masking of IpAddress, Cidr and NetBlockSize.
//
// Text conversion uses inet_pton/inet_ntop: pure C library functions (no system call), strict
// about IPv4 (dotted quad only: "10.1" is rejected) and RFC 5952 canonical on output.
#include "policy/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "policy/decimal.h"

namespace usherd::policy {

namespace {

std::string in_quotes(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

bool is_list_separator(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',';
}

}  // namespace

ParseResult<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; the longest IPv6 text is INET6_ADDRSTRLEN-1.
  char buffer[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buffer) {
    return parse_error("invalid IP address " + in_quotes(text));
  }
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress address;
  if (inet_pton(AF_INET, buffer, address.bytes_.data()) == 1) {
    address.family_ = Family::v4;
    return address;
  }
  if (inet_pton(AF_INET6, buffer, address.bytes_.data()) == 1) {
    address.family_ = Family::v6;
    return address;
  }
  return parse_error("invalid IP address " + in_quotes(text));
}

IpAddress IpAddress::from_v4(std::uint32_t host_order) {
  IpAddress address;
  address.family_ = Family::v4;
  address.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  address.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  address.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  address.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return address;
}

IpAddress IpAddress::from_v6(const Bytes& bytes) {
  IpAddress address;
  address.family_ = Family::v6;
  address.bytes_ = bytes;
  return address;
}

std::uint32_t IpAddress::v4_host_order() const {
  return (std::uint32_t{bytes_[0]} << 24) | (std::uint32_t{bytes_[1]} << 16) |
         (std::uint32_t{bytes_[2]} << 8) | std::uint32_t{bytes_[3]};
}

bool IpAddress::is_v4_mapped() const {
  if (!is_v6()) return false;
  for (std::size_t i = 0; i < 10; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[10] == 0xff && bytes_[11] == 0xff;
}

IpAddress IpAddress::unmapped() const {
  if (!is_v4_mapped()) return *this;
  IpAddress address;
  address.family_ = Family::v4;
  std::copy(bytes_.begin() + 12, bytes_.end(), address.bytes_.begin());
  return address;
}

IpAddress IpAddress::masked(unsigned prefix_length) const {
  IpAddress address = *this;
  const unsigned bits = std::min(prefix_length, bit_length());
  for (unsigned i = 0; i < address.bytes_.size(); ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit >= bits) {
      address.bytes_[i] = 0;
    } else if (first_bit + 8 > bits) {
      const unsigned keep = bits - first_bit;
      address.bytes_[i] &= static_cast<std::uint8_t>(0xffu << (8 - keep));
    }
  }
  return address;
}

std::string IpAddress::to_string() const {
  char buffer[INET6_ADDRSTRLEN];
  const int af = is_v4() ? AF_INET : AF_INET6;
  if (inet_ntop(af, bytes_.data(), buffer, sizeof buffer) == nullptr) return "?";
  return buffer;
}

Cidr::Cidr(IpAddress address, unsigned prefix_length)
    : address_(address.masked(prefix_length)),
      prefix_length_(std::min(prefix_length, address.bit_length())) {}

ParseResult<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return parse_error(address.error());
  if (slash == std::string_view::npos) return Cidr(*address, address->bit_length());
  const auto length_text = text.substr(slash + 1);
  const auto length = parse_decimal(length_text, address->bit_length());
  if (!length) {
    return parse_error("invalid prefix length " + in_quotes(length_text) + " in " +
                       in_quotes(text) + " (at most " + std::to_string(address->bit_length()) +
                       ")");
  }
  return Cidr(*address, static_cast<unsigned>(*length));
}

ParseResult<std::vector<Cidr>> Cidr::parse_list_element(std::string_view text) {
  // The networks systemd's in_addr_prefixes_from_string() gives these words.
  auto pair = [](std::uint32_t v4, unsigned v4_length, std::string_view v6, unsigned v6_length) {
    return std::vector<Cidr>{Cidr(IpAddress::from_v4(v4), v4_length),
                             Cidr(*IpAddress::parse(v6), v6_length)};
  };
  if (text == "any") return pair(0, 0, "::", 0);
  if (text == "localhost") return pair(0x7f000000, 8, "::1", 128);
  if (text == "link-local") return pair(0xa9fe0000, 16, "fe80::", 64);
  if (text == "multicast") return pair(0xe0000000, 4, "ff00::", 8);
  auto cidr = Cidr::parse(text);
  if (!cidr) return parse_error(cidr.error());
  return std::vector<Cidr>{*cidr};
}

bool Cidr::contains(const IpAddress& address) const {
  return address.family() == address_.family() && address.masked(prefix_length_) == address_;
}

std::string Cidr::to_string() const {
  return address_.to_string() + "/" + std::to_string(prefix_length_);
}

ParseResult<std::vector<Cidr>> parse_cidr_list(std::string_view text) {
  std::vector<Cidr> list;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (is_list_separator(text[pos])) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    while (end < text.size() && !is_list_separator(text[end])) ++end;
    auto element = Cidr::parse_list_element(text.substr(pos, end - pos));
    if (!element) return parse_error(element.error());
    list.insert(list.end(), element->begin(), element->end());
    pos = end;
  }
  return list;
}

bool any_contains(const std::vector<Cidr>& list, const IpAddress& address) {
  return std::any_of(list.begin(), list.end(),
                     [&](const Cidr& cidr) { return cidr.contains(address); });
}

ParseResult<NetBlockSize> NetBlockSize::parse(std::string_view text) {
  NetBlockSize size;
  const auto colon = text.find(':');
  const auto v4_text = text.substr(0, colon);
  const auto v4 = parse_decimal(v4_text);
  if (!v4) return parse_error("expected v4[:v6] prefix lengths, got " + in_quotes(text));
  if (*v4 > 32) {
    return parse_error("IPv4 prefix length must be at most 32, got " + std::string(v4_text));
  }
  size.v4 = static_cast<unsigned>(*v4);
  if (colon != std::string_view::npos) {
    const auto v6_text = text.substr(colon + 1);
    const auto v6 = parse_decimal(v6_text);
    if (!v6) return parse_error("expected v4[:v6] prefix lengths, got " + in_quotes(text));
    if (*v6 > 128) {
      return parse_error("IPv6 prefix length must be at most 128, got " + std::string(v6_text));
    }
    size.v6 = static_cast<unsigned>(*v6);
  }
  return size;
}

std::string NetBlockSize::to_string() const {
  return std::to_string(v4) + ":" + std::to_string(v6);
}

IpAddress mask_to_block(const IpAddress& address, const NetBlockSize& block_size) {
  return address.masked(address.is_v4() ? block_size.v4 : block_size.v6);
}

}  // namespace usherd::policy

std::size_t std::hash<usherd::policy::IpAddress>::operator()(
    const usherd::policy::IpAddress& address) const noexcept {
  // FNV-1a over family and bytes: cheap, and good enough for table keys.
  std::size_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint8_t byte) {
    h ^= byte;
    h *= 1099511628211ull;
  };
  mix(static_cast<std::uint8_t>(address.family()));
  for (auto byte : address.bytes()) mix(byte);
  return h;
}

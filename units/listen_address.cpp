// Listen*= address syntax; see listen_address.h.
#include "units/listen_address.h"

#include "policy/address.h"
#include "units/values.h"

namespace usherd::units {
namespace {

// sockaddr_un's sun_path is 108 bytes; a path needs its terminating NUL, an abstract name
// its leading NUL.
constexpr std::size_t kMaxUnixPath = 107;

Result<std::uint16_t> parse_port(std::string_view text) {
  auto port = parse_unsigned(text, 65535);
  if (!port) return fail("invalid port number");
  return static_cast<std::uint16_t>(*port);
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text, SocketType type) {
  ListenAddress out;
  out.type = type;
  out.text = std::string(text);
  if (text.empty()) return fail("empty address");
  if (text.front() == '/') {
    if (text.size() > kMaxUnixPath) return fail("socket path too long");
    out.family = ListenAddress::unix_path;
    out.path = std::string(text);
    return out;
  }
  if (text.front() == '@') {
    if (text.size() < 2 || text.size() > kMaxUnixPath + 1)
      return fail("invalid abstract socket name");
    out.family = ListenAddress::unix_abstract;
    out.path = std::string(text.substr(1));
    return out;
  }
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    std::string_view host = text.substr(1, close - 1);
    if (host.find('%') != std::string_view::npos)
      return fail("interface scopes (%dev) are not supported by usherd");
    auto ip = policy::IpAddress::parse(host);
    if (!ip || !ip->is_v6()) return fail("invalid IPv6 address");
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("missing port after ']'");
    auto port = parse_port(text.substr(close + 2));
    if (!port) return tl::unexpected(port.error());
    out.host = ip->to_string();
    out.port = *port;
    return out;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    auto port = parse_port(text);
    if (!port) return tl::unexpected(port.error());
    out.port = *port;
    return out;
  }
  if (text.find(':') != colon) return fail("IPv6 addresses must be written in brackets");
  auto ip = policy::IpAddress::parse(text.substr(0, colon));
  if (!ip || !ip->is_v4()) return fail("invalid IPv4 address");
  auto port = parse_port(text.substr(colon + 1));
  if (!port) return tl::unexpected(port.error());
  out.host = ip->to_string();
  out.port = *port;
  return out;
}

}  // namespace usherd::units

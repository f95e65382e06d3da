#include "supervisor/convert.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <list>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include "activation/credentials.h"

namespace usherd::supervisor {
namespace {

/// Listening sockets handed to usherd by its own service manager, not yet claimed.
struct Inherited {
  int fd;
  std::string name;
};
std::list<Inherited> g_inherited;

activation::ListenSpec::Type to_type(units::SocketType type) {
  switch (type) {
    case units::SocketType::stream:
      return activation::ListenSpec::Type::stream;
    case units::SocketType::datagram:
      return activation::ListenSpec::Type::datagram;
    case units::SocketType::seqpacket:
      return activation::ListenSpec::Type::seqpacket;
  }
  return activation::ListenSpec::Type::stream;
}

}  // namespace

activation::ListenSpec to_listen_spec(const units::SocketUnit& unit,
                                      const units::ListenAddress& address) {
  activation::ListenSpec spec;
  spec.type = to_type(address.type);
  switch (address.family) {
    case units::ListenAddress::inet:
      spec.family = activation::ListenSpec::Family::inet;
      break;
    case units::ListenAddress::unix_path:
      spec.family = activation::ListenSpec::Family::unix_path;
      break;
    case units::ListenAddress::unix_abstract:
      spec.family = activation::ListenSpec::Family::unix_abstract;
      break;
  }
  spec.host = address.host;
  spec.port = address.port;
  spec.path = address.path;
  if (unit.backlog)
    spec.backlog = static_cast<int>(std::min<std::uint32_t>(*unit.backlog, INT32_MAX));
  switch (unit.bind_ipv6_only) {
    case units::BindIPv6Only::system_default:
      spec.bind_ipv6_only = activation::ListenSpec::BindIPv6Only::default_;
      break;
    case units::BindIPv6Only::both:
      spec.bind_ipv6_only = activation::ListenSpec::BindIPv6Only::both;
      break;
    case units::BindIPv6Only::ipv6_only:
      spec.bind_ipv6_only = activation::ListenSpec::BindIPv6Only::ipv6_only;
      break;
  }
  spec.reuse_port = unit.reuse_port;
  spec.free_bind = unit.free_bind;
  spec.keep_alive = unit.keep_alive;
  spec.no_delay = unit.no_delay;
  if (unit.defer_accept.count() > 0) {
    // systemd rounds up to whole seconds (socket.c: USEC_PER_SEC - 1 added, then divided).
    auto seconds = (unit.defer_accept.count() + 999999) / 1000000;
    spec.defer_accept_s = static_cast<int>(std::min<long long>(seconds, INT32_MAX));
  }
  // SocketUser=/SocketGroup= resolve through NSS here, at load time.
  if (unit.socket_user || unit.socket_group) {
    auto creds = activation::resolve_credentials(unit.socket_user.value_or(""),
                                                 unit.socket_group.value_or(""), {});
    if (creds) {
      if (unit.socket_user) spec.socket_uid = creds->uid;
      spec.socket_gid = creds->gid;
    }
  }
  spec.socket_mode = unit.socket_mode;
  spec.directory_mode = unit.directory_mode;
  return spec;
}

std::string listen_key(const activation::ListenSpec& s) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}{}{}{}|{}|{}|{}|{}|{}", static_cast<int>(s.type),
                     static_cast<int>(s.family), s.host, s.port, s.path, s.backlog.value_or(-1),
                     static_cast<int>(s.bind_ipv6_only), s.reuse_port, s.free_bind, s.keep_alive,
                     s.no_delay, s.socket_uid ? static_cast<long>(*s.socket_uid) : -1L,
                     s.socket_gid ? static_cast<long>(*s.socket_gid) : -1L, s.socket_mode,
                     s.directory_mode, s.defer_accept_s);
}

int socket_type(const activation::ListenSpec& spec) {
  switch (spec.type) {
    case activation::ListenSpec::Type::stream:
      return SOCK_STREAM;
    case activation::ListenSpec::Type::datagram:
      return SOCK_DGRAM;
    case activation::ListenSpec::Type::seqpacket:
      return SOCK_SEQPACKET;
  }
  return SOCK_STREAM;
}

policy::IpAddress to_policy_address(const activation::SocketAddress& address) {
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.get());
    return policy::IpAddress::from_v4(ntohl(in->sin_addr.s_addr));
  }
  if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.get());
    policy::IpAddress::Bytes bytes{};
    std::memcpy(bytes.data(), &in6->sin6_addr, 16);
    return policy::IpAddress::from_v6(bytes).unmapped();
  }
  return policy::IpAddress::from_v6(policy::IpAddress::Bytes{});
}

policy::IpAddress unix_peer_address(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  // No credentials (cannot happen for a connected AF_UNIX stream): uid 2^32-1, nobody's.
  std::uint32_t uid = 0xffffffffu;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) uid = cred.uid;
  policy::IpAddress::Bytes bytes{};
  bytes[0] = 0x01;
  bytes[4] = static_cast<std::uint8_t>(uid >> 24);
  bytes[5] = static_cast<std::uint8_t>(uid >> 16);
  bytes[6] = static_cast<std::uint8_t>(uid >> 8);
  bytes[7] = static_cast<std::uint8_t>(uid);
  return policy::IpAddress::from_v6(bytes);
}

policy::GlobalConfig to_admission_config(const units::DaemonConfig& c) {
  policy::GlobalConfig g;
  g.max_startups = c.max_startups;
  g.per_source_max_startups = c.per_source_max_startups;
  g.net_block_size = c.per_source_net_block_size;
  g.exempt_sources = c.exempt_sources;
  g.reserved_startups = c.reserved_startups;
  g.penalties = c.per_source_penalties;
  g.penalty_exempt_sources = c.per_source_penalty_exempt_list;
  g.waiting_room = c.waiting_room;
  g.stall = c.stall;
  return g;
}

policy::SocketConfig to_socket_policy(const units::SocketUnit& u) {
  policy::SocketConfig s;
  s.max_connections = u.max_connections;
  s.max_connections_per_source = u.max_connections_per_source;
  s.max_startups = u.max_startups;
  s.per_source_max_startups = u.per_source_max_startups;
  s.ip_address_allow = u.ip_address_allow;
  s.ip_address_deny = u.ip_address_deny;
  s.trigger_limit_interval = u.trigger_limit_interval;
  s.trigger_limit_burst = u.trigger_limit_burst;
  return s;
}

std::string instance_name(const std::string& template_name, std::uint64_t counter,
                          const std::string& part) {
  auto at = template_name.find('@');
  std::string prefix =
      template_name.substr(0, at == std::string::npos ? template_name.find('.') : at);
  std::string suffix = template_name.substr(template_name.rfind('.'));
  return fmt::format("{}@{}-{}{}", prefix, counter, part, suffix);
}

int collect_inherited_listeners() {
  // sd_listen_fds(3): fds from 3, LISTEN_PID must be ours; names from LISTEN_FDNAMES.
  // unset_environment=1 so the variables never reach an instance.
  char** names = nullptr;
  int n = sd_listen_fds_with_names(1, &names);
  if (n <= 0) return 0;
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    g_inherited.push_back({fd, names && names[i] ? names[i] : ""});
    if (names) free(names[i]);
  }
  free(names);
  return n;
}

std::optional<activation::Listener> take_inherited_listener(const activation::ListenSpec& spec,
                                                            const units::SocketUnit& unit) {
  for (auto it = g_inherited.begin(); it != g_inherited.end(); ++it) {
    bool by_name = !unit.file_descriptor_name.empty() && it->name == unit.file_descriptor_name &&
                   it->name != "unknown" && it->name != "connection";
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(it->fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != socket_type(spec))
      continue;
    activation::SocketAddress local = activation::local_address(it->fd);
    bool by_address = false;
    if (spec.family == activation::ListenSpec::Family::inet && local.is_inet()) {
      by_address =
          local.port() == spec.port && (spec.host.empty() || local.ip_text() == spec.host ||
                                        (spec.host == "0.0.0.0" && local.ip_text() == "::"));
    } else if (spec.family == activation::ListenSpec::Family::unix_path) {
      by_address = local.to_string() == spec.path;
    } else if (spec.family == activation::ListenSpec::Family::unix_abstract) {
      by_address = local.to_string() == "@" + spec.path;
    }
    if (!by_name && !by_address) continue;
    activation::Listener listener;
    listener.fd.reset(it->fd);
    (void)::fcntl(it->fd, F_SETFL, ::fcntl(it->fd, F_GETFL) | O_NONBLOCK);
    listener.bound = local.to_string();
    g_inherited.erase(it);
    return listener;
  }
  return std::nullopt;
}

}  // namespace usherd::supervisor

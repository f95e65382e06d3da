// open_listener (see listener.h). Option order follows systemd's socket_apply_socket_options
// and socket_address_listen: options that must precede bind (SO_REUSEADDR, SO_REUSEPORT,
// IPV6_V6ONLY, IP_FREEBIND) are set first, then bind, ownership and mode of a unix path,
// then listen.
#include "activation/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstring>
#include <fstream>

#include "activation/socket_address.h"

namespace usherd::activation {
namespace {

int socket_type(ListenSpec::Type type) {
  switch (type) {
    case ListenSpec::Type::stream:
      return SOCK_STREAM;
    case ListenSpec::Type::datagram:
      return SOCK_DGRAM;
    case ListenSpec::Type::seqpacket:
      return SOCK_SEQPACKET;
  }
  return SOCK_STREAM;
}

Result<void> set_flag(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return fail_errno(what);
  return {};
}

// mkdir -p of path's parent, each created directory with mode.
Result<void> make_parents(const std::string& path, mode_t mode) {
  for (std::size_t pos = path.find('/', 1); pos != std::string::npos;
       pos = path.find('/', pos + 1)) {
    std::string dir = path.substr(0, pos);
    if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return fail_errno("mkdir " + dir);
  }
  return {};
}

Result<SocketAddress> inet_address(const ListenSpec& spec, bool& want_dual_stack) {
  std::string host = spec.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  want_dual_stack = false;
  if (host.empty()) {
    want_dual_stack = spec.bind_ipv6_only != ListenSpec::BindIPv6Only::ipv6_only;
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = in6addr_any;
    in6.sin6_port = htons(spec.port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  }
  sockaddr_in in4{};
  if (inet_pton(AF_INET, host.c_str(), &in4.sin_addr) == 1) {
    in4.sin_family = AF_INET;
    in4.sin_port = htons(spec.port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&in4), sizeof in4);
  }
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(spec.port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  }
  return fail("not a numeric IP address: \"" + spec.host + "\"", EINVAL);
}

Result<SocketAddress> unix_address(const ListenSpec& spec) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  bool abstract = spec.family == ListenSpec::Family::unix_abstract;
  // A path needs its terminating NUL, an abstract name its leading one.
  std::size_t room = sizeof un.sun_path - 1;
  if (spec.path.empty() || spec.path.size() > room)
    return fail("unix socket path empty or too long: \"" + spec.path + "\"", ENAMETOOLONG);
  if (abstract) {
    std::memcpy(un.sun_path + 1, spec.path.data(), spec.path.size());
    return SocketAddress(reinterpret_cast<const sockaddr*>(&un),
                         offsetof(sockaddr_un, sun_path) + 1 + spec.path.size());
  }
  std::memcpy(un.sun_path, spec.path.data(), spec.path.size());
  return SocketAddress(reinterpret_cast<const sockaddr*>(&un),
                       offsetof(sockaddr_un, sun_path) + spec.path.size() + 1);
}

// Removes a stale socket at path; anything else there is an error (we never delete a file
// that is not ours to delete).
Result<void> remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) return fail(path + " exists and is not a socket", EEXIST);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path);
  return {};
}

Result<void> apply_common_options(int fd, const ListenSpec& spec, int family) {
  bool inet = family == AF_INET || family == AF_INET6;
  if (inet && spec.type == ListenSpec::Type::stream)
    if (auto ok = set_flag(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt SO_REUSEADDR"); !ok)
      return ok;
  if (spec.reuse_port)
    if (auto ok = set_flag(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt SO_REUSEPORT"); !ok)
      return ok;
  if (inet && spec.free_bind) {
    // IP_FREEBIND applies to IPv6 sockets as well (ipv6 honours inet->freebind).
    if (auto ok = set_flag(fd, IPPROTO_IP, IP_FREEBIND, 1, "setsockopt IP_FREEBIND"); !ok)
      return ok;
  }
  if (spec.keep_alive)
    if (auto ok = set_flag(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "setsockopt SO_KEEPALIVE"); !ok)
      return ok;
  if (inet && spec.no_delay && spec.type == ListenSpec::Type::stream)
    if (auto ok = set_flag(fd, IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt TCP_NODELAY"); !ok)
      return ok;
  if (inet && spec.defer_accept_s > 0 && spec.type == ListenSpec::Type::stream)
    if (auto ok = set_flag(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, spec.defer_accept_s,
                           "setsockopt TCP_DEFER_ACCEPT");
        !ok)
      return ok;
  return {};
}

Result<UniqueFd> open_bound(const ListenSpec& spec, const SocketAddress& address,
                            std::optional<bool> v6only) {
  UniqueFd fd(socket(address.family(), socket_type(spec.type) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail_errno("socket");
  if (auto ok = apply_common_options(fd.get(), spec, address.family()); !ok)
    return tl::unexpected(ok.error());
  if (v6only)
    if (auto ok = set_flag(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, *v6only ? 1 : 0,
                           "setsockopt IPV6_V6ONLY");
        !ok)
      return tl::unexpected(ok.error());
  if (bind(fd.get(), address.get(), address.size()) != 0)
    return fail_errno("bind " + address.to_string());
  return fd;
}

}  // namespace

int default_backlog() {
  std::ifstream in("/proc/sys/net/core/somaxconn");
  long value = 0;
  if (in >> value && value > 0) return value > INT_MAX ? INT_MAX : static_cast<int>(value);
  return 4096;
}

Result<Listener> open_listener(const ListenSpec& spec) {
  UniqueFd fd;
  if (spec.family == ListenSpec::Family::inet) {
    bool dual_stack = false;
    auto address = inet_address(spec, dual_stack);
    if (!address) return tl::unexpected(address.error());
    std::optional<bool> v6only;
    if (address->family() == AF_INET6) {
      if (spec.host.empty())
        v6only = !dual_stack;
      else if (spec.bind_ipv6_only != ListenSpec::BindIPv6Only::default_)
        v6only = spec.bind_ipv6_only == ListenSpec::BindIPv6Only::ipv6_only;
    }
    auto bound = open_bound(spec, *address, v6only);
    if (!bound && spec.host.empty() && bound.error().code == EAFNOSUPPORT) {
      // No IPv6 on this machine: a port-only spec means IPv4 any.
      sockaddr_in in4{};
      in4.sin_family = AF_INET;
      in4.sin_addr.s_addr = htonl(INADDR_ANY);
      in4.sin_port = htons(spec.port);
      bound = open_bound(spec, SocketAddress(reinterpret_cast<const sockaddr*>(&in4), sizeof in4),
                         std::nullopt);
    }
    if (!bound) return tl::unexpected(bound.error());
    fd = std::move(*bound);
  } else {
    auto address = unix_address(spec);
    if (!address) return tl::unexpected(address.error());
    if (spec.family == ListenSpec::Family::unix_path) {
      if (auto ok = make_parents(spec.path, spec.directory_mode); !ok)
        return tl::unexpected(ok.error());
      if (auto ok = remove_stale_socket(spec.path); !ok) return tl::unexpected(ok.error());
    }
    auto bound = open_bound(spec, *address, std::nullopt);
    if (!bound) return tl::unexpected(bound.error());
    fd = std::move(*bound);
    if (spec.family == ListenSpec::Family::unix_path) {
      // bind() created the node under our umask; set the mode asked for exactly.
      if (chmod(spec.path.c_str(), spec.socket_mode) != 0) return fail_errno("chmod " + spec.path);
      if (spec.socket_uid || spec.socket_gid) {
        if (lchown(spec.path.c_str(), spec.socket_uid.value_or(static_cast<uid_t>(-1)),
                   spec.socket_gid.value_or(static_cast<gid_t>(-1))) != 0)
          return fail_errno("chown " + spec.path);
      }
    }
  }
  if (spec.type != ListenSpec::Type::datagram) {
    if (listen(fd.get(), spec.backlog.value_or(default_backlog())) != 0)
      return fail_errno("listen");
  }
  std::string bound = local_address(fd.get()).to_string();
  return Listener{std::move(fd), std::move(bound)};
}

}  // namespace usherd::activation

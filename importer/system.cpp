// The real System: files, NSS and the resolver; see system.h.
#include "importer/system.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "units/unit_parser.h"

namespace usherd::importer {
namespace {

// xinetd's net_addr(): the prefix follows from how many octets the network number uses
// (10 -> /8, 172.16 -> /16, 192.168.1 -> /24); a full four-octet number is one host.
std::optional<policy::Cidr> cidr_of_network_number(std::uint32_t net) {
  if (net == 0) return std::nullopt;
  if (net <= 0xFF) return policy::Cidr(policy::IpAddress::from_v4(net << 24), 8);
  if (net <= 0xFFFF) return policy::Cidr(policy::IpAddress::from_v4(net << 16), 16);
  if (net <= 0xFFFFFF) return policy::Cidr(policy::IpAddress::from_v4(net << 8), 24);
  return policy::Cidr(policy::IpAddress::from_v4(net), 32);
}

}  // namespace

Result<std::string> System::read_file(const std::string& path) const {
  return units::read_whole_file(path);
}

Result<std::vector<std::string>> System::list_directory(const std::string& path) const {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return fail_errno("cannot open directory " + path);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int saved = errno;
  ::closedir(dir);
  if (saved != 0) return fail("cannot read directory " + path, saved);
  return names;
}

bool System::is_directory(const std::string& path) const {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool System::is_regular_file(const std::string& path) const {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::optional<std::uint16_t> System::service_port(const std::string& name,
                                                  const std::string& protocol) const {
  servent entry{};
  servent* found = nullptr;
  std::vector<char> buffer(4096);
  while (::getservbyname_r(name.c_str(), protocol.c_str(), &entry, buffer.data(), buffer.size(),
                           &found) == ERANGE &&
         buffer.size() < (1u << 20))
    buffer.resize(buffer.size() * 2);
  if (found == nullptr) return std::nullopt;
  return ntohs(static_cast<std::uint16_t>(found->s_port));
}

std::optional<policy::Cidr> System::network(const std::string& name) const {
  netent entry{};
  netent* found = nullptr;
  int h_errno_value = 0;
  std::vector<char> buffer(4096);
  while (::getnetbyname_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found,
                          &h_errno_value) == ERANGE &&
         buffer.size() < (1u << 20))
    buffer.resize(buffer.size() * 2);
  if (found == nullptr || found->n_addrtype != AF_INET) return std::nullopt;
  return cidr_of_network_number(found->n_net);
}

std::vector<policy::IpAddress> System::resolve_host(const std::string& name, bool v4_only,
                                                    bool v6_only) const {
  addrinfo hints{};
  hints.ai_family = v4_only ? AF_INET : v6_only ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::vector<policy::IpAddress> out;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0) return out;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    std::optional<policy::IpAddress> ip;
    if (a->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      ip = policy::IpAddress::from_v4(ntohl(in->sin_addr.s_addr));
    } else if (a->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      policy::IpAddress::Bytes bytes{};
      std::memcpy(bytes.data(), in6->sin6_addr.s6_addr, bytes.size());
      ip = policy::IpAddress::from_v6(bytes);
    }
    if (ip && std::find(out.begin(), out.end(), *ip) == out.end()) out.push_back(*ip);
  }
  ::freeaddrinfo(list);
  return out;
}

std::optional<bool> System::has_supplementary_groups(const std::string& user) const {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(4096);
  while (::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found) == ERANGE &&
         buffer.size() < (1u << 20))
    buffer.resize(buffer.size() * 2);
  if (found == nullptr) {
    // A numeric user unknown to NSS has no group list at all.
    bool numeric = !user.empty() && user.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) return false;
    return std::nullopt;
  }
  std::vector<gid_t> groups(16);
  int count = static_cast<int>(groups.size());
  while (::getgrouplist(user.c_str(), found->pw_gid, groups.data(), &count) < 0) {
    if (groups.size() >= 65536) break;
    groups.resize(static_cast<std::size_t>(count) > groups.size() ? static_cast<std::size_t>(count)
                                                                  : groups.size() * 2);
    count = static_cast<int>(groups.size());
  }
  for (int i = 0; i < count; ++i)
    if (groups[static_cast<std::size_t>(i)] != found->pw_gid) return true;
  return false;
}

const System& real_system() {
  static const System system;
  return system;
}

}  // namespace usherd::importer

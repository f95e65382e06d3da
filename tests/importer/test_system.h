// A System with fixed answers for the parts of the machine a test must not depend on:
// /etc/hosts.allow and /etc/hosts.deny (from a test directory, or absent), host and network
// names, and users' group lists. Files, directories and /etc/services are the real ones.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "importer/system.h"

namespace usherd::importer::testing {

class TestSystem : public System {
 public:
  /// hosts_dir: where hosts.allow / hosts.deny are looked for instead of /etc ("" = none).
  explicit TestSystem(std::string hosts_dir = "") : hosts_dir_(std::move(hosts_dir)) {}

  Result<std::string> read_file(const std::string& path) const override {
    if (path == "/etc/hosts.allow" || path == "/etc/hosts.deny") {
      if (hosts_dir_.empty()) return fail("no such file", ENOENT);
      return System::read_file(hosts_dir_ + path.substr(4));
    }
    return System::read_file(path);
  }

  std::optional<policy::Cidr> network(const std::string& name) const override {
    if (name == "loopback") return *policy::Cidr::parse("127.0.0.0/8");
    if (name == "testnet") return *policy::Cidr::parse("198.51.100.0/24");
    return std::nullopt;
  }

  std::vector<policy::IpAddress> resolve_host(const std::string& name, bool v4_only,
                                              bool v6_only) const override {
    std::vector<policy::IpAddress> out;
    auto add = [&](const char* text) {
      auto ip = *policy::IpAddress::parse(text);
      if ((!v4_only || ip.is_v4()) && (!v6_only || ip.is_v6())) out.push_back(ip);
    };
    if (name == "localhost") {
      add("127.0.0.1");
      add("::1");
    } else if (name == "server.example") {
      add("192.0.2.10");
    }
    return out;
  }

  std::optional<bool> has_supplementary_groups(const std::string& user) const override {
    // "daemon" stands for a user with supplementary groups; every other user has none.
    return user == "daemon";
  }

 private:
  std::string hosts_dir_;
};

}  // namespace usherd::importer::testing

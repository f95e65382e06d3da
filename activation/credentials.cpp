// NSS resolution of User=/Group=/SupplementaryGroups= into raw ids (see credentials.h).
// Uses the reentrant *_r calls with a growing buffer (ERANGE), never the static-buffer ones.
#include "activation/credentials.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>

namespace usherd::activation {
namespace {

std::optional<unsigned long> parse_id(std::string_view text) {
  if (text.empty()) return std::nullopt;
  unsigned long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  // (uid_t)-1 means "no change" to set*id: never a valid id.
  if (value >= 0xffffffffUL) return std::nullopt;
  return value;
}

// Looks up a user by name or number. A number unknown to NSS is still a valid uid (systemd
// accepts it too); known_to_nss is false then.
Result<Credentials> lookup_user(std::string_view user, bool& known_to_nss) {
  std::string name(user);
  std::vector<char> buffer(4096);
  struct passwd pw {};
  struct passwd* found = nullptr;
  auto numeric = parse_id(user);
  for (;;) {
    int rc = numeric ? getpwuid_r(static_cast<uid_t>(*numeric), &pw, buffer.data(), buffer.size(),
                                  &found)
                     : getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc != 0) return fail("look up user \"" + name + "\"", rc);
    break;
  }
  Credentials creds;
  known_to_nss = found != nullptr;
  if (!found) {
    if (!numeric) return fail("no such user \"" + name + "\"", ENOENT);
    creds.uid = static_cast<uid_t>(*numeric);
    creds.gid = static_cast<gid_t>(*numeric);
    creds.user = name;
    return creds;
  }
  creds.uid = pw.pw_uid;
  creds.gid = pw.pw_gid;
  creds.user = pw.pw_name;
  creds.home = pw.pw_dir ? pw.pw_dir : "";
  creds.shell = pw.pw_shell ? pw.pw_shell : "";
  return creds;
}

Result<gid_t> lookup_group(std::string_view group) {
  if (auto numeric = parse_id(group)) return static_cast<gid_t>(*numeric);
  std::string name(group);
  std::vector<char> buffer(4096);
  struct group gr {};
  struct group* found = nullptr;
  for (;;) {
    int rc = getgrnam_r(name.c_str(), &gr, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc != 0) return fail("look up group \"" + name + "\"", rc);
    break;
  }
  if (!found) return fail("no such group \"" + name + "\"", ENOENT);
  return gr.gr_gid;
}

}  // namespace

Result<Credentials> resolve_credentials(std::string_view user, std::string_view group,
                                        const std::vector<std::string>& supplementary) {
  Credentials creds;
  bool known_to_nss = false;
  if (user.empty()) {
    creds.uid = geteuid();
    creds.gid = getegid();
    creds.user = std::to_string(creds.uid);
  } else {
    auto found = lookup_user(user, known_to_nss);
    if (!found) return tl::unexpected(found.error());
    creds = std::move(*found);
  }
  if (!group.empty()) {
    auto gid = lookup_group(group);
    if (!gid) return tl::unexpected(gid.error());
    creds.gid = *gid;
  }
  // The user's own memberships, as initgroups(3) would set them, when NSS knows the user.
  if (known_to_nss) {
    int count = 64;
    std::vector<gid_t> groups(count);
    while (getgrouplist(creds.user.c_str(), creds.gid, groups.data(), &count) < 0) {
      if (count <= static_cast<int>(groups.size())) count = static_cast<int>(groups.size()) * 2;
      groups.resize(count);
    }
    groups.resize(count);
    creds.groups = std::move(groups);
  } else {
    creds.groups = {creds.gid};
  }
  for (const auto& extra : supplementary) {
    auto gid = lookup_group(extra);
    if (!gid) return tl::unexpected(gid.error());
    creds.groups.push_back(*gid);
  }
  std::sort(creds.groups.begin(), creds.groups.end());
  creds.groups.erase(std::unique(creds.groups.begin(), creds.groups.end()), creds.groups.end());
  return creds;
}

}  // namespace usherd::activation

#include "activation/fd_table.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>
#include <string_view>

#include "base/unique_fd.h"

namespace usherd::activation {

Result<ino_t> socket_inode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("fstat");
  if (!S_ISSOCK(st.st_mode)) return fail("not a socket", ENOTSOCK);
  return st.st_ino;
}

Result<bool> holds_any_socket(pid_t pid, std::span<const ino_t> inodes) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return fail_errno("open " + dir);
  DIR* d = ::fdopendir(dfd.get());
  if (d == nullptr) return fail_errno("fdopendir " + dir);
  (void)dfd.release();  // owned by d from here
  bool found = false;
  while (!found) {
    errno = 0;
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      if (errno != 0) {
        int saved = errno;
        ::closedir(d);
        return fail("readdir " + dir, saved);
      }
      break;
    }
    if (entry->d_name[0] == '.') continue;
    // "socket:[12345]": the link text names the inode without another stat of the target.
    char target[64];
    ssize_t n = ::readlinkat(::dirfd(d), entry->d_name, target, sizeof target - 1);
    if (n <= 0) continue;  // closed meanwhile
    std::string_view link(target, static_cast<std::size_t>(n));
    constexpr std::string_view kPrefix = "socket:[";
    if (!link.starts_with(kPrefix) || !link.ends_with(']')) continue;
    link.remove_prefix(kPrefix.size());
    link.remove_suffix(1);
    ino_t inode = 0;
    auto [end, ec] = std::from_chars(link.data(), link.data() + link.size(), inode);
    if (ec != std::errc() || end != link.data() + link.size()) continue;
    found = std::find(inodes.begin(), inodes.end(), inode) != inodes.end();
  }
  ::closedir(d);
  return found;
}

std::vector<pid_t> child_pids(pid_t pid) {
  std::vector<pid_t> out;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(tasks.c_str());
  if (d == nullptr) return out;
  while (const dirent* entry = ::readdir(d)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream children(tasks + "/" + entry->d_name + "/children");
    pid_t child = 0;
    while (children >> child) out.push_back(child);
  }
  ::closedir(d);
  return out;
}

}  // namespace usherd::activation

// Runtime directories (see runtime_dir.h).
#include "activation/runtime_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/unique_fd.h"

namespace usherd::activation {
namespace {

// Empties the directory open as dir_fd (which this function takes over), depth first.
Result<void> remove_children(UniqueFd dir_fd, const std::string& shown) {
  DIR* dir = fdopendir(dir_fd.get());
  if (!dir) return fail_errno("opendir " + shown);
  dir_fd.release();  // owned by dir now
  Result<void> result;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
    std::string child_shown = shown + "/" + entry->d_name;
    int child = openat(dirfd(dir), entry->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (child >= 0) {
      if (auto ok = remove_children(UniqueFd(child), child_shown); !ok) {
        result = ok;
        break;
      }
      if (unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        result = fail_errno("rmdir " + child_shown);
        break;
      }
    } else if (errno == ENOTDIR || errno == ELOOP) {
      // A file, a socket or a symlink: unlink the entry itself.
      if (unlinkat(dirfd(dir), entry->d_name, 0) != 0 && errno != ENOENT) {
        result = fail_errno("unlink " + child_shown);
        break;
      }
    } else if (errno != ENOENT) {
      result = fail_errno("open " + child_shown);
      break;
    }
    errno = 0;
  }
  closedir(dir);
  return result;
}

Result<void> apply_mode_and_owner(const std::string& path, mode_t mode, std::optional<uid_t> uid,
                                  std::optional<gid_t> gid) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if ((uid || gid) && fchown(fd.get(), uid.value_or(static_cast<uid_t>(-1)),
                             gid.value_or(static_cast<gid_t>(-1))) != 0)
    return fail_errno("chown " + path);
  // After chown: chown clears set-id bits, so the mode goes last.
  if (fchmod(fd.get(), mode) != 0) return fail_errno("chmod " + path);
  return {};
}

}  // namespace

Result<std::string> create_runtime_directory(const std::string& base, const std::string& name,
                                             mode_t mode, std::optional<uid_t> uid,
                                             std::optional<gid_t> gid) {
  if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos)
    return fail("runtime directory name must be relative without \"..\": \"" + name + "\"", EINVAL);
  std::string path = base;
  std::size_t start = 0;
  for (;;) {
    auto slash = name.find('/', start);
    std::string part = name.substr(start, slash == std::string::npos ? slash : slash - start);
    start = slash == std::string::npos ? name.size() : slash + 1;
    if (part.empty()) {
      if (slash == std::string::npos) break;
      continue;
    }
    path += "/" + part;
    bool last = slash == std::string::npos || start >= name.size();
    if (mkdir(path.c_str(), last ? mode : 0755) != 0 && errno != EEXIST)
      return fail_errno("mkdir " + path);
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return fail_errno("stat " + path);
    if (!S_ISDIR(st.st_mode)) return fail(path + " exists and is not a directory", EEXIST);
    if (last) break;
  }
  if (auto ok = apply_mode_and_owner(path, mode, uid, gid); !ok) return tl::unexpected(ok.error());
  return path;
}

Result<void> remove_tree(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    if (errno == ENOTDIR || errno == ELOOP) {
      if (unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path);
      return {};
    }
    return fail_errno("open " + path);
  }
  if (auto ok = remove_children(UniqueFd(fd), path); !ok) return ok;
  if (rmdir(path.c_str()) != 0 && errno != ENOENT) return fail_errno("rmdir " + path);
  return {};
}

Result<UniqueFd> open_private_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("mkdir " + path);
  UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    if (errno == ELOOP || errno == ENOTDIR)
      return fail(path + " is a symlink or not a directory; refusing it as the runtime directory",
                  ELOOP);
    return fail_errno("open " + path);
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0) return fail_errno("fstat " + path);
  if (st.st_uid != ::geteuid())
    return fail(path + " is owned by uid " + std::to_string(st.st_uid) + ", not by usherd (uid " +
                    std::to_string(::geteuid()) + "); refusing to trust it",
                EPERM);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(path + " is writable by group or others (mode " + mode + "); refusing to trust it",
                EPERM);
  }
  return dir;
}

}  // namespace usherd::activation

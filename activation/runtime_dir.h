// RuntimeDirectory=: per-service directories under a base (normally /run), created with the
// mode and owner asked for, and removed without ever following a symlink; and usherd's own
// runtime directory, which must be private before anything in it is trusted.
//
// Removal walks the tree with openat(O_NOFOLLOW | O_DIRECTORY) and unlinkat relative to the
// parent's fd, so a service that replaces a subdirectory with a symlink to / cannot make
// usherd delete anything outside the tree.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::activation {

/// Creates BASE/NAME (NAME may hold '/': intermediate directories get 0755) with mode and
/// owner; an existing directory is kept and given the mode and owner again. Returns the path.
/// A non-directory (or a symlink) in the way is an error (EEXIST / ENOTDIR).
Result<std::string> create_runtime_directory(const std::string& base, const std::string& name,
                                             mode_t mode, std::optional<uid_t> uid = std::nullopt,
                                             std::optional<gid_t> gid = std::nullopt);

/// Opens usherd's own runtime directory (creating it with mode 0755 when missing) and proves
/// it private on the open fd (O_DIRECTORY | O_NOFOLLOW, then fstat): owned by the effective
/// uid and writable by nobody else. usherd trusts what it finds there (the state file names
/// processes it will signal; the control socket's mode guards its commands), so a directory
/// another user made or can write is refused (EPERM), as is a symlink (ELOOP).
Result<UniqueFd> open_private_directory(const std::string& path);

/// Removes path and everything below it without following symlinks (a symlink is removed,
/// never its target). A path that does not exist is success.
Result<void> remove_tree(const std::string& path);

}  // namespace usherd::activation

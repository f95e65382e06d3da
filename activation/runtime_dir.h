// RuntimeDirectory=: per-service directories under a base (normally /run), created with the
// mode and owner asked for, and removed without ever following a symlink.
//
// Removal walks the tree with openat(O_NOFOLLOW | O_DIRECTORY) and unlinkat relative to the
// parent's fd, so a service that replaces a subdirectory with a symlink to / cannot make
// usherd delete anything outside the tree.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.h"

namespace usherd::activation {

/// Creates BASE/NAME (NAME may hold '/': intermediate directories get 0755) with mode and
/// owner; an existing directory is kept and given the mode and owner again. Returns the path.
/// A non-directory (or a symlink) in the way is an error (EEXIST / ENOTDIR).
Result<std::string> create_runtime_directory(const std::string& base, const std::string& name,
                                             mode_t mode, std::optional<uid_t> uid = std::nullopt,
                                             std::optional<gid_t> gid = std::nullopt);

/// Removes path and everything below it without following symlinks (a symlink is removed,
/// never its target). A path that does not exist is success.
Result<void> remove_tree(const std::string& path);

}  // namespace usherd::activation

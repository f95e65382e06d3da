// Which open files another process holds, read from /proc/PID/fd, and which processes it
// started (/proc/PID/task/TID/children).
//
// An Accept=no service is handed usherd's listening sockets; some daemons drop them on their
// own reload (OpenSSH's sshd re-executes itself on SIGHUP after closing every listener, then
// binds the addresses in its own configuration). The supervisor asks this question to notice
// that, instead of leaving connections to queue on a socket nobody accepts from.
#pragma once

#include <sys/types.h>

#include <span>
#include <vector>

#include "base/result.h"

namespace usherd::activation {

/// The inode number of the socket fd refers to (what /proc/PID/fd shows as "socket:[N]").
Result<ino_t> socket_inode(int fd);

/// True when process pid has at least one fd open on a socket whose inode is in inodes.
/// ENOENT/ESRCH when the process is gone; EACCES without the right to inspect it.
Result<bool> holds_any_socket(pid_t pid, std::span<const ino_t> inodes);

/// The children of pid (every thread's /proc/PID/task/TID/children); empty when it has none
/// or is gone.
std::vector<pid_t> child_pids(pid_t pid);

}  // namespace usherd::activation

#include "base/unique_fd.h"

#include <unistd.h>

namespace usherd {

void UniqueFd::reset(int fd) {
  // close(2): the descriptor is released even when close reports EINTR on Linux, so never
  // retry (a retry could close an fd another part of the program just opened).
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace usherd

// FdCloser, refuse_passed_fds() and dispose_passed_fds() (see fd_closer.h).
#include "activation/fd_closer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace usherd::activation {
namespace {

// socket(7), Linux 6.16: not yet in the headers of every release usherd builds on.
#ifndef SO_PASSRIGHTS
constexpr int SO_PASSRIGHTS = 83;
#endif

}  // namespace

FdCloser::~FdCloser() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) {
    // A close stuck for good (a dead FUSE server) must not hang usherd's exit.
    std::unique_lock lock(mutex_);
    bool idle = wake_.wait_for(lock, std::chrono::seconds(2), [&] { return in_flight_ == 0; });
    lock.unlock();
    if (idle)
      thread_.join();
    else
      thread_.detach();
  }
  for (int fd : queue_) ::close(fd);
}

void FdCloser::close_later(UniqueFd fd) {
  if (!fd) return;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(fd.release());
    ++received_;
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  wake_.notify_all();
}

std::size_t FdCloser::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + in_flight_;
}

std::size_t FdCloser::received() const {
  std::lock_guard lock(mutex_);
  return received_;
}

void FdCloser::run() {
  std::vector<int> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    batch.swap(queue_);
    in_flight_ = batch.size();
    lock.unlock();
    for (int fd : batch) {
      ::close(fd);
      std::lock_guard count(mutex_);
      --in_flight_;
    }
    batch.clear();
    wake_.notify_all();  // the destructor may be waiting for in_flight_ == 0
    lock.lock();
  }
}

bool refuse_passed_fds(int fd) {
  int off = 0;
  return setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &off, sizeof off) == 0;
}

void dispose_passed_fds(const msghdr& msg, FdCloser& closer) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int passed;
      std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
      closer.close_later(UniqueFd(passed));
    }
  }
}

}  // namespace usherd::activation

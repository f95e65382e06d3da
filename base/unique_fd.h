// UniqueFd: sole owner of one file descriptor. Closing is the destructor's job, so no path
// (early return, exception, error branch) leaks an fd into a later spawn; every fd the
// supervisor holds is born close-on-exec as well, so ownership and hygiene back each other.
#pragma once

#include <utility>

namespace usherd {

class UniqueFd {
 public:
  UniqueFd() = default;
  /// Takes ownership of fd (negative means empty).
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  /// The descriptor, still owned; -1 when empty.
  int get() const { return fd_; }
  /// True when a descriptor is owned.
  explicit operator bool() const { return fd_ >= 0; }
  /// Gives up ownership and returns the descriptor.
  int release() { return std::exchange(fd_, -1); }
  /// Closes the owned descriptor (if any) and takes fd.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace usherd

// ReadyLogMatcher and the record pipe (see ready_log.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "activation/ready_log.h"

#include <fcntl.h>
#include <pcre2.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace usherd::activation {
namespace {

// Generous for any sane readiness pattern on 1 KiB, small enough that a catastrophic one
// gives up in well under a millisecond.
constexpr uint32_t kMatchLimit = 100000;
constexpr uint32_t kDepthLimit = 1000;
constexpr std::size_t kHeapLimitKiB = 1024;

}  // namespace

Result<ReadyLogMatcher> ReadyLogMatcher::compile(std::string_view pattern) {
  ReadyLogMatcher m;
  m.pattern_ = std::string(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  m.code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_ANCHORED, &error, &offset, nullptr);
  if (!m.code_) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    return fail("X-ReadyLog pattern at offset " + std::to_string(offset) + ": " +
                    reinterpret_cast<const char*>(message),
                EINVAL);
  }
  m.match_data_ = pcre2_match_data_create_from_pattern(m.code_, nullptr);
  m.context_ = pcre2_match_context_create(nullptr);
  if (!m.match_data_ || !m.context_) return fail("X-ReadyLog: out of memory", ENOMEM);
  pcre2_set_match_limit(m.context_, kMatchLimit);
  pcre2_set_depth_limit(m.context_, kDepthLimit);
  pcre2_set_heap_limit(m.context_, kHeapLimitKiB);
  return m;
}

ReadyLogMatcher::ReadyLogMatcher(ReadyLogMatcher&& other) noexcept
    : pattern_(std::move(other.pattern_)),
      code_(std::exchange(other.code_, nullptr)),
      match_data_(std::exchange(other.match_data_, nullptr)),
      context_(std::exchange(other.context_, nullptr)) {}

ReadyLogMatcher& ReadyLogMatcher::operator=(ReadyLogMatcher&& other) noexcept {
  if (this != &other) {
    release();
    pattern_ = std::move(other.pattern_);
    code_ = std::exchange(other.code_, nullptr);
    match_data_ = std::exchange(other.match_data_, nullptr);
    context_ = std::exchange(other.context_, nullptr);
  }
  return *this;
}

ReadyLogMatcher::~ReadyLogMatcher() {
  release();
}

void ReadyLogMatcher::release() {
  pcre2_match_data_free(match_data_);
  pcre2_match_context_free(context_);
  pcre2_code_free(code_);
  match_data_ = nullptr;
  context_ = nullptr;
  code_ = nullptr;
}

ReadyLogMatcher::Outcome ReadyLogMatcher::check(std::string_view record) const {
  if (!code_) return Outcome::no_match;
  std::size_t length = std::min(record.size(), kReadyLogWindow);
  int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(record.data()), length, 0,
                       PCRE2_ANCHORED, match_data_, context_);
  if (rc >= 0) return Outcome::matched;
  if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL) return Outcome::no_match;
  return Outcome::limit_exceeded;  // match, depth or heap limit, or another matching error
}

bool ReadyLogMatcher::matches_record(std::string_view record) const {
  return check(record) == Outcome::matched;
}

Result<std::pair<UniqueFd, UniqueFd>> make_record_pipe() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return fail_errno("socketpair SOCK_SEQPACKET");
  UniqueFd daemon_end(fds[0]);
  UniqueFd instance_end(fds[1]);
  int flags = fcntl(daemon_end.get(), F_GETFL);
  if (flags < 0 || fcntl(daemon_end.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return fail_errno("fcntl O_NONBLOCK");
  // The instance only writes: shut its reading side so nothing can be sent back to it.
  shutdown(daemon_end.get(), SHUT_WR);
  (void)refuse_passed_fds(daemon_end.get());
  return std::make_pair(std::move(daemon_end), std::move(instance_end));
}

Result<std::size_t> receive_record(int fd, char* buffer, std::size_t size, FdCloser& closer) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{buffer, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("recvmsg capture");
  dispose_passed_fds(msg, closer);
  return static_cast<std::size_t>(n);
}

}  // namespace usherd::activation

// X-ReadyLog=: readiness from the instance's stderr, one record per write().
//
// A startup ends when a record BEGINS with a match: PCRE2 with PCRE2_ANCHORED, applied to the
// first kReadyLogWindow bytes of the record, under match and depth limits. Why not the
// alternatives: libstdc++'s std::regex recurses once per character and overflows the stack on
// a 100 KB record a client can provoke; Boost.Regex's '^' also matches after any newline, so
// a line smuggled inside a record (sshd -i -e does not escape CR/LF in a username) would
// count. A pattern that backtracks catastrophically hits the match limit and simply does not
// match.
//
// Records come from a SOCK_SEQPACKET socketpair (make_record_pipe), so each write() of the
// service arrives as one record and a record boundary cannot be forged by the service's input.
// The instance may attach descriptors to a record: the daemon's end refuses them where the
// kernel can, and receive_record() takes any that arrive out of the message for an FdCloser,
// since a plain recv() would have the kernel drop them, and close them, on usherd's thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "activation/fd_closer.h"
#include "base/result.h"
#include "base/unique_fd.h"

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;

namespace usherd::activation {

/// Only this many leading bytes of a record are matched.
inline constexpr std::size_t kReadyLogWindow = 1024;

/// A compiled, anchored X-ReadyLog= pattern. Move-only; not for concurrent use (one
/// match_data is reused).
class ReadyLogMatcher {
 public:
  /// How one record fared.
  enum class Outcome { matched, no_match, limit_exceeded };

  /// Compiles pattern; the error names the offset and PCRE2's reason.
  static Result<ReadyLogMatcher> compile(std::string_view pattern);

  ReadyLogMatcher(ReadyLogMatcher&& other) noexcept;
  ReadyLogMatcher& operator=(ReadyLogMatcher&& other) noexcept;
  ReadyLogMatcher(const ReadyLogMatcher&) = delete;
  ReadyLogMatcher& operator=(const ReadyLogMatcher&) = delete;
  ~ReadyLogMatcher();

  /// True when the record begins with a match.
  bool matches_record(std::string_view record) const;
  /// The detailed outcome (limit_exceeded counts as no match).
  Outcome check(std::string_view record) const;
  /// The pattern as given.
  const std::string& pattern() const { return pattern_; }

 private:
  ReadyLogMatcher() = default;
  void release();

  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  pcre2_real_match_data_8* match_data_ = nullptr;
  pcre2_real_match_context_8* context_ = nullptr;
};

/// A SOCK_SEQPACKET socketpair for an instance's stderr: first = the daemon's end (CLOEXEC,
/// NONBLOCK, refusing passed fds where the kernel can), second = the instance's end (CLOEXEC,
/// blocking; map it to fd 2).
Result<std::pair<UniqueFd, UniqueFd>> make_record_pipe();

/// Receives one record (at most size bytes; a longer one is cut) from the daemon's end
/// without blocking: its length, 0 at end of file; EAGAIN when none is waiting. Descriptors
/// attached to it go to closer.
Result<std::size_t> receive_record(int fd, char* buffer, std::size_t size, FdCloser& closer);

}  // namespace usherd::activation

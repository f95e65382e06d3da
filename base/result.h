// Result<T>: how every layer returns an expected failure (a value, never an exception).
//
// tl::expected (Debian's libexpected-dev) stands in for std::expected, which g++ 12 lacks in
// C++20 mode; switching is this one alias. Error carries the errno captured on the line that
// failed plus a sentence for the log, so callers can both branch on the cause and report it.
#pragma once

#include <cerrno>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace usherd {

/// An expected failure: errno (0 when none applies) and a human sentence.
struct Error {
  int code = 0;
  std::string message;

  /// "message: strerror(code)", or just the message when code is 0.
  std::string to_string() const;
};

template <class T>
using Result = tl::expected<T, Error>;

/// Builds the error branch of a Result.
inline tl::unexpected<Error> fail(std::string message, int code = 0) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

/// Builds the error branch from errno as it is now; call it on the line after the failure.
inline tl::unexpected<Error> fail_errno(std::string message) {
  return tl::unexpected<Error>(Error{errno, std::move(message)});
}

}  // namespace usherd

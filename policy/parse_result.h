// ParseResult<T>: a parsed value or a one-line error, for the configuration parsers of policy/.
//
// policy/ links nothing but the standard library, so it cannot use usherd::Result from base/.
// The error text names the offending input and what was expected, without a file name, line
// number or key: the unit-file parser prefixes "file:line: Key=" itself.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace usherd::policy {

/// Why a configuration value was rejected: one sentence, no trailing period.
struct ParseError {
  std::string message;
};

/// Holds either a T (success) or a ParseError.
template <class T>
class ParseResult {
 public:
  /// Success.
  ParseResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  /// Failure.
  ParseResult(ParseError error) : state_(std::in_place_index<1>, std::move(error)) {}

  /// True when a value was parsed.
  bool ok() const { return state_.index() == 0; }
  /// Same as ok().
  explicit operator bool() const { return ok(); }
  /// The value; precondition ok().
  const T& value() const& { return std::get<0>(state_); }
  /// The value, moved out; precondition ok().
  T&& value() && { return std::get<0>(std::move(state_)); }
  /// The value; precondition ok().
  const T& operator*() const& { return value(); }
  /// Member access to the value; precondition ok().
  const T* operator->() const { return &value(); }
  /// The error message; precondition !ok().
  const std::string& error() const { return std::get<1>(state_).message; }

 private:
  std::variant<T, ParseError> state_;
};

/// Builds the failure branch of any ParseResult.
inline ParseError parse_error(std::string message) {
  return ParseError{std::move(message)};
}

}  // namespace usherd::policy

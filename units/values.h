// Value syntaxes shared by unit files and usherd.conf, as systemd parses them.
//
// Each parser takes the value exactly as it follows "Key=" (already stripped of surrounding
// whitespace) and returns the typed value or an error sentence without file, line or key: the
// caller prefixes those when it turns the error into a Diagnostic. Sources: systemd's
// parse_boolean(), parse_sec(), parse_size(), parse_mode(), signal_from_string(),
// cunescape() and extract_first_word() (systemd.syntax(7), systemd.time(7)).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace usherd::units {

/// Durations in unit files have microsecond resolution, as systemd's usec_t.
using Duration = std::chrono::microseconds;
/// "infinity" as a Duration.
inline constexpr Duration kInfiniteDuration = Duration::max();

/// yes/no, true/false, on/off, 1/0 (and y/n, t/f), case-insensitive.
std::optional<bool> parse_boolean(std::string_view text);

/// A time span: "90", "2min 30s", "1h", "1.5s", "infinity". A bare number is in default_unit.
Result<Duration> parse_timespan(std::string_view text,
                                Duration default_unit = std::chrono::seconds(1));

/// A size with optional base-1024 suffix (K, M, G, T, P, E; "B" alone is bytes), "1.5G" allowed.
Result<std::uint64_t> parse_size(std::string_view text);

/// An octal access mode, 0..07777 ("0666", "755").
Result<mode_t> parse_mode(std::string_view text);

/// A decimal unsigned number up to max.
Result<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max = UINT32_MAX);

/// A decimal signed number within [min, max].
Result<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max);

/// A signal: "SIGTERM", "TERM", "15", "SIGRTMIN+3", "RTMIN+3".
Result<int> parse_signal(std::string_view text);

/// "TERM" for SIGTERM (without "SIG"), or the number as text when the signal has no name.
std::string signal_name(int signal);

/// Resolves C escapes (\n \r \t \a \b \f \v \\ \" \' \s \xNN \NNN \uXXXX \UXXXXXXXX) in text.
/// A NUL byte or a malformed escape is an error.
Result<std::string> c_unescape(std::string_view text);

/// How extract_first_word() treats quotes and backslashes.
enum ExtractFlags : unsigned {
  extract_unquote = 1u << 0,    ///< '…' and "…" group words and are removed.
  extract_cunescape = 1u << 1,  ///< Backslash sequences are C escapes (else: next char literal).
  extract_relax = 1u << 2,      ///< An unterminated quote or trailing backslash is accepted.
};

/// Removes the first whitespace-separated word from text and returns it (nullopt when only
/// whitespace is left). Quotes may start anywhere inside a word, as systemd allows.
Result<std::optional<std::string>> extract_first_word(std::string_view& text, unsigned flags);

/// Every word of text, per extract_first_word().
Result<std::vector<std::string>> split_words(std::string_view text, unsigned flags);

/// Removes leading and trailing spaces, tabs, newlines and carriage returns.
std::string_view strip_whitespace(std::string_view text);

/// True for space, tab, newline and carriage return.
bool is_whitespace(char c);

}  // namespace usherd::units

// Key kinds: one parser per syntax of unit-file values, shared by every section's table
// (key_table.h). A kind is a type with
//   static void apply(Field& field, const Entry& entry, ParseContext& context);
// that parses entry.value, stores it in field, or leaves field alone and reports why, in the
// one wording systemd uses for that syntax (ParseContext::invalid, ::unsupported_value, ...).
// The value parsers a kind is built on (values.h, policy/) return their errors as values; the
// kind is the only place an error becomes a diagnostic.
//
//   Bool                  yes/no; "expected a boolean".
//   Value<Parse>          any Parse(text) -> Result<T> or policy::ParseResult<T>.
//   Enum<Words[, Reason]> one word of a table; "not supported" or "Failed to parse (Reason)".
//   Count<Min>            an unsigned 32-bit count of at least Min.
//   Text                  a string after specifier expansion.
//   Raw                   the value as written.
//   ExecList              ExecStart=-style command lines, appended.
//   CidrList              IPAddressAllow=-style networks, appended.
//   OrReset<Kind>         an empty value resets the field (optional or list); else Kind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "units/config.h"
#include "units/parse_context.h"
#include "units/unit_file.h"
#include "units/values.h"

namespace usherd::units {

/// One word of an enum-valued key.
template <class E>
struct Word {
  std::string_view text;  ///< As written in unit files.
  E value;                ///< What it means.
};

/// A boolean.
struct Bool {
  /// Stores the boolean, or reports "expected a boolean".
  static void apply(bool& field, const Entry& entry, ParseContext& context) {
    if (auto b = context.boolean(entry)) field = *b;
  }
};

/// Any value with a pure parser: Result<T> (values.h) or policy::ParseResult<T>.
template <auto Parse>
struct Value {
  /// Stores Parse(entry.value), or reports its error as the reason.
  template <class Field>
  static void apply(Field& field, const Entry& entry, ParseContext& context) {
    auto parsed = Parse(entry.value);
    if (!parsed) {
      if constexpr (std::is_same_v<std::decay_t<decltype(parsed.error())>, std::string>) {
        return context.invalid(entry, parsed.error());
      } else {
        return context.invalid(entry, parsed.error().message);
      }
    }
    field = *parsed;
  }
};

/// One word of Words (an array of Word<E>). Without Reason an unknown word is "not supported
/// by usherd" (systemd knows it, usherd does not); with one, it is a parse failure.
template <const auto& Words, const std::string_view* Reason = nullptr>
struct Enum {
  /// Stores the word's value, or reports the word.
  template <class Field>
  static void apply(Field& field, const Entry& entry, ParseContext& context) {
    for (const auto& word : Words) {
      if (word.text == entry.value) {
        field = word.value;
        return;
      }
    }
    if constexpr (Reason == nullptr) {
      context.unsupported_value(entry);
    } else {
      context.invalid(entry, *Reason);
    }
  }
};

/// An unsigned count up to 2^32-1, at least Min.
template <unsigned Min>
struct Count {
  /// Stores the count, or reports why it is not one.
  template <class Field>
  static void apply(Field& field, const Entry& entry, ParseContext& context) {
    auto value = parse_unsigned(entry.value, UINT32_MAX);
    if (!value || *value < Min) {
      context.invalid(entry,
                      value ? "must be at least " + std::to_string(Min) : value.error().message);
      return;
    }
    field = static_cast<unsigned>(*value);
  }
};

/// A string, specifiers expanded.
struct Text {
  /// Stores the expanded value, or reports the specifier that failed.
  template <class Field>
  static void apply(Field& field, const Entry& entry, ParseContext& context) {
    if (auto value = context.expand(entry)) field = std::move(*value);
  }
};

/// The value exactly as written (no specifiers: a pattern or a message of usherd's own).
struct Raw {
  /// Stores the value.
  template <class Field>
  static void apply(Field& field, const Entry& entry, ParseContext&) {
    field = entry.value;
  }
};

/// Command lines of ExecStart= and friends; each assignment appends, empty resets.
struct ExecList {
  /// Appends the commands, or reports why they do not parse.
  static void apply(std::vector<ExecCommand>& field, const Entry& entry, ParseContext& context);
};

/// Networks of IPAddressAllow=/IPAddressDeny=; each assignment appends, empty resets.
struct CidrList {
  /// Appends the networks, or reports the first that does not parse.
  static void apply(std::vector<policy::Cidr>& field, const Entry& entry, ParseContext& context);
};

/// Kind, except that an empty value resets the field (an optional to unset, a list to empty),
/// as systemd's empty assignment does.
template <class Kind>
struct OrReset {
  /// Resets on an empty value, else applies Kind.
  template <class Field>
  static void apply(Field& field, const Entry& entry, ParseContext& context) {
    if (entry.value.empty()) {
      if constexpr (requires { field.reset(); }) {
        field.reset();
      } else {
        field.clear();
      }
      return;
    }
    Kind::apply(field, entry, context);
  }
};

/// Words of a list-valued key, specifiers expanded, quotes removed; nullopt (reported) when
/// the value does not split.
std::optional<std::vector<std::string>> list_words(const Entry& entry, ParseContext& context);

/// A time span in seconds by default ("90", "1min 30s", "infinity").
Result<Duration> timespan(std::string_view text);

/// A time span where 0 means infinity (TimeoutStartSec=, TimeoutStopSec=).
Result<Duration> timespan_zero_is_infinity(std::string_view text);

}  // namespace usherd::units

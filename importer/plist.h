// Property lists (launchd.plist(5)) in their XML form, read with libxml2.
//
// The document is <plist><dict>...</dict></plist> with the value elements dict (key/value
// pairs, in document order), array, string, integer, real, true, false, data and date. Every
// value keeps the line it was written on, so findings name file and line. libxml2 runs with
// no network access and no entity substitution; binary plists ("bplist00") are refused with
// the command that converts them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace usherd::importer {

struct PlistEntry;

/// One property-list value.
struct PlistValue {
  /// The element it came from.
  enum class Type { dict, array, string, integer, real, boolean, data, date };

  Type type = Type::string;       ///< Which element.
  unsigned line = 0;              ///< Where it was written.
  std::string text;               ///< string, real, data and date: the element's text.
  std::int64_t integer = 0;       ///< integer.
  bool boolean = false;           ///< true / false.
  std::vector<PlistEntry> dict;   ///< dict, in document order.
  std::vector<PlistValue> array;  ///< array.

  /// The value of key in a dict (nullptr when absent or not a dict).
  const PlistValue* find(std::string_view key) const;
  /// "dictionary", "array", "string", "integer", ... for messages.
  std::string_view type_name() const;
};

/// One key of a dict and its value.
struct PlistEntry {
  std::string key;   ///< The <key>.
  PlistValue value;  ///< What follows it.
};

/// Parses a whole property list. On failure error_line is the line of the fault (0 when
/// unknown) and the error's message says what is wrong.
Result<PlistValue> parse_plist(std::string_view text, unsigned& error_line);

}  // namespace usherd::importer

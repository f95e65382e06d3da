// ParseContext helpers: systemd's uniform wording for ignored values; see parse_context.h.
#include "units/parse_context.h"

#include "units/specifiers.h"
#include "units/values.h"

namespace usherd::units {

std::optional<std::string> ParseContext::expand(const Entry& entry) {
  auto expanded = expand_specifiers(entry.value, unit, &uses_instance);
  if (!expanded) {
    sink.warning(entry.file, entry.line,
                 "Failed to resolve specifiers in " + entry.key + "=, ignoring: " + entry.value +
                     " (" + expanded.error().message + ")");
    return std::nullopt;
  }
  return std::move(*expanded);
}

void ParseContext::invalid(const Entry& entry, std::string_view reason) {
  std::string message = "Failed to parse " + entry.key + "= value, ignoring: " + entry.value;
  if (!reason.empty()) message += " (" + std::string(reason) + ")";
  sink.warning(entry.file, entry.line, std::move(message));
}

void ParseContext::unsupported_value(const Entry& entry) {
  sink.warning(entry.file, entry.line,
               entry.key + "=" + entry.value + " is not supported by usherd, ignoring.");
}

void ParseContext::unknown_key(const Entry& entry) {
  if (entry.key.rfind("X-", 0) == 0) return;
  sink.warning(
      entry.file, entry.line,
      "Unknown key name '" + entry.key + "' in section '" + entry.section + "', ignoring.");
}

void ParseContext::not_enforced(const Entry& entry) {
  sink.warning(entry.file, entry.line, entry.key + "= is not enforced by usherd, ignoring.");
}

std::optional<bool> ParseContext::boolean(const Entry& entry) {
  auto value = parse_boolean(entry.value);
  if (!value) invalid(entry, "expected a boolean");
  return value;
}

}  // namespace usherd::units

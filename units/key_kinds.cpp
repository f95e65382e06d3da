// The key kinds that are not templates, and the wording of unhonoured keys; see key_kinds.h
// and key_table.h.
#include "units/key_kinds.h"

#include "policy/address.h"
#include "units/exec_command.h"
#include "units/key_table.h"

namespace usherd::units {

std::string_view to_string(KeySupport support) {
  switch (support) {
    case KeySupport::honoured:
      return "honoured";
    case KeySupport::extension:
      return "extension";
    case KeySupport::ignored:
      return "ignored";
    case KeySupport::unsupported:
      return "unsupported";
    case KeySupport::not_enforced:
      return "not-enforced";
  }
  return "unknown";
}

void report_unhonoured(KeySupport support, const Entry& entry, ParseContext& context) {
  switch (support) {
    case KeySupport::unsupported:
      context.sink.warning(entry.file, entry.line,
                           entry.key + "= is not supported by usherd, ignoring.");
      return;
    case KeySupport::not_enforced:
      context.not_enforced(entry);
      return;
    case KeySupport::honoured:
    case KeySupport::extension:
    case KeySupport::ignored:
      return;
  }
}

void ExecList::apply(std::vector<ExecCommand>& field, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) {
    field.clear();
    return;
  }
  auto value = context.expand(entry);
  if (!value) return;
  auto commands = parse_exec_value(*value);
  if (!commands) return context.invalid(entry, commands.error().message);
  for (auto& c : *commands) field.push_back(std::move(c));
}

void CidrList::apply(std::vector<policy::Cidr>& field, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) {
    field.clear();
    return;
  }
  auto parsed = policy::parse_cidr_list(entry.value);
  if (!parsed) return context.invalid(entry, parsed.error());
  field.insert(field.end(), parsed->begin(), parsed->end());
}

std::optional<std::vector<std::string>> list_words(const Entry& entry, ParseContext& context) {
  auto value = context.expand(entry);
  if (!value) return std::nullopt;
  auto words = split_words(*value, extract_unquote);
  if (!words) {
    context.invalid(entry, words.error().message);
    return std::nullopt;
  }
  return std::move(*words);
}

Result<Duration> timespan(std::string_view text) {
  return parse_timespan(text);
}

Result<Duration> timespan_zero_is_infinity(std::string_view text) {
  auto d = parse_timespan(text);
  if (d && d->count() == 0) return kInfiniteDuration;
  return d;
}

}  // namespace usherd::units

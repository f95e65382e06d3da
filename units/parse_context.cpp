// ParseContext helpers and the [Unit]/[Install] keys common to every unit; see parse_context.h.
#include "units/parse_context.h"

#include <algorithm>
#include <array>

#include "units/config.h"
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

namespace {

// [Unit] keys that order or relate units: usherd starts services only on demand and has no
// transaction engine, so they are accepted and have no effect, as the issue specifies.
constexpr std::array<std::string_view, 34> kSilentUnitKeys = {"After",
                                                              "Before",
                                                              "Wants",
                                                              "Requires",
                                                              "Requisite",
                                                              "BindsTo",
                                                              "PartOf",
                                                              "Upholds",
                                                              "Conflicts",
                                                              "OnFailure",
                                                              "OnSuccess",
                                                              "PropagatesReloadTo",
                                                              "ReloadPropagatedFrom",
                                                              "PropagatesStopTo",
                                                              "StopPropagatedFrom",
                                                              "JoinsNamespaceOf",
                                                              "RequiresMountsFor",
                                                              "OnFailureJobMode",
                                                              "IgnoreOnIsolate",
                                                              "StopWhenUnneeded",
                                                              "RefuseManualStart",
                                                              "RefuseManualStop",
                                                              "AllowIsolate",
                                                              "DefaultDependencies",
                                                              "CollectMode",
                                                              "FailureAction",
                                                              "SuccessAction",
                                                              "StartLimitIntervalSec",
                                                              "StartLimitBurst",
                                                              "StartLimitAction",
                                                              "JobTimeoutSec",
                                                              "SourcePath",
                                                              "Alias",
                                                              "WantedBy"};

constexpr std::array<std::string_view, 46> kSandboxingKeys = {"ProtectSystem",
                                                              "ProtectHome",
                                                              "PrivateTmp",
                                                              "PrivateDevices",
                                                              "PrivateNetwork",
                                                              "PrivateUsers",
                                                              "PrivateIPC",
                                                              "PrivateMounts",
                                                              "ProtectKernelTunables",
                                                              "ProtectKernelModules",
                                                              "ProtectKernelLogs",
                                                              "ProtectControlGroups",
                                                              "ProtectClock",
                                                              "ProtectHostname",
                                                              "ProtectProc",
                                                              "ProcSubset",
                                                              "RestrictAddressFamilies",
                                                              "RestrictNamespaces",
                                                              "RestrictRealtime",
                                                              "RestrictSUIDSGID",
                                                              "RestrictFileSystems",
                                                              "LockPersonality",
                                                              "MemoryDenyWriteExecute",
                                                              "SystemCallFilter",
                                                              "SystemCallArchitectures",
                                                              "SystemCallErrorNumber",
                                                              "SystemCallLog",
                                                              "CapabilityBoundingSet",
                                                              "AmbientCapabilities",
                                                              "ReadWritePaths",
                                                              "ReadOnlyPaths",
                                                              "InaccessiblePaths",
                                                              "ExecPaths",
                                                              "NoExecPaths",
                                                              "TemporaryFileSystem",
                                                              "BindPaths",
                                                              "BindReadOnlyPaths",
                                                              "DeviceAllow",
                                                              "DevicePolicy",
                                                              "DynamicUser",
                                                              "RemoveIPC",
                                                              "KeyringMode",
                                                              "IPAddressAllow",
                                                              "IPAddressDeny",
                                                              "SecureBits",
                                                              "NetworkNamespacePath"};

bool contains(const auto& table, std::string_view key) {
  return std::find(table.begin(), table.end(), key) != table.end();
}

bool apply_condition(UnitInfo& info, const Entry& entry, ParseContext& context,
                     std::string_view type, bool is_assert) {
  if (entry.value.empty()) {
    // systemd.unit(5): an empty assignment resets the whole list of conditions (or asserts).
    std::erase_if(info.conditions, [&](const Condition& c) { return c.is_assert == is_assert; });
    return true;
  }
  auto value = context.expand(entry);
  if (!value) return true;
  Condition condition;
  condition.type = std::string(type);
  condition.is_assert = is_assert;
  condition.file = entry.file;
  condition.line = entry.line;
  condition.text = entry.key + "=" + entry.value;
  std::string_view p = *value;
  for (; !p.empty() && (p.front() == '|' || p.front() == '!'); p.remove_prefix(1)) {
    if (p.front() == '|') {
      condition.trigger = true;
    } else {
      condition.negate = true;
    }
    while (p.size() > 1 && is_whitespace(p[1])) p.remove_prefix(1);
  }
  condition.parameter = std::string(p);
  info.conditions.push_back(std::move(condition));
  return true;
}

}  // namespace

bool is_sandboxing_key(std::string_view key) {
  return contains(kSandboxingKeys, key);
}

bool apply_unit_entry(UnitInfo& info, const Entry& entry, ParseContext& context) {
  if (entry.section == "Install") return true;  // enablement is the package's business
  const std::string& key = entry.key;
  if (key == "Description") {
    if (auto value = context.expand(entry)) info.description = std::move(*value);
    return true;
  }
  if (key == "Documentation") {
    if (entry.value.empty()) {
      info.documentation.clear();
      return true;
    }
    auto value = context.expand(entry);
    if (!value) return true;
    auto words = split_words(*value, extract_unquote);
    if (!words) {
      context.invalid(entry, words.error().message);
      return true;
    }
    for (auto& w : *words) info.documentation.push_back(std::move(w));
    return true;
  }
  if (key.rfind("Condition", 0) == 0 && key.size() > 9) {
    return apply_condition(info, entry, context, std::string_view(key).substr(9), false);
  }
  if (key.rfind("Assert", 0) == 0 && key.size() > 6) {
    return apply_condition(info, entry, context, std::string_view(key).substr(6), true);
  }
  return contains(kSilentUnitKeys, key);
}

}  // namespace usherd::units

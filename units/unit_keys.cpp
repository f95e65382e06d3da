// The [Unit] and [Install] keys common to every unit type (systemd.unit(5)), as a key table,
// and the sandboxing keys of systemd.exec(5) that every unit type recognises and none enforces.
#include <algorithm>
#include <string_view>

#include "units/config.h"
#include "units/key_kinds.h"
#include "units/key_table.h"
#include "units/parse_context.h"
#include "units/values.h"

namespace usherd::units {

namespace {

// [Unit] keys that order or relate units: usherd starts services only on demand and has no
// transaction engine, so they are accepted and have no effect, as the issue specifies.
constexpr std::string_view kSilentUnitKeys[] = {"After",
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

constexpr std::string_view kSandboxingKeys[] = {"ProtectSystem",
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

// Condition*=/Assert*= kinds usherd evaluates (conditions.cpp; a test keeps the two in step).
// Any other kind is accepted here and reported when the conditions are checked.
constexpr std::string_view kConditionKeys[] = {
    "ConditionPathExists",         "ConditionPathExistsGlob",    "ConditionPathIsDirectory",
    "ConditionPathIsSymbolicLink", "ConditionDirectoryNotEmpty", "ConditionFileNotEmpty",
    "ConditionFileIsExecutable",   "AssertPathExists",           "AssertPathExistsGlob",
    "AssertPathIsDirectory",       "AssertPathIsSymbolicLink",   "AssertDirectoryNotEmpty",
    "AssertFileNotEmpty",          "AssertFileIsExecutable"};

// [Install] is the package manager's business: every key is accepted; these are listed.
constexpr std::string_view kInstallKeys[] = {"WantedBy", "RequiredBy", "UpheldBy",
                                             "Also",     "Alias",      "DefaultInstance"};

constexpr std::string_view kCondition = "Condition";
constexpr std::string_view kAssert = "Assert";

// Condition*= and Assert*=: the kind is the rest of the key. An empty assignment resets the
// whole list of conditions (or asserts), as systemd.unit(5) says.
void apply_condition(UnitInfo& info, const Entry& entry, ParseContext& context,
                     std::string_view type, bool is_assert) {
  if (entry.value.empty()) {
    std::erase_if(info.conditions, [&](const Condition& c) { return c.is_assert == is_assert; });
    return;
  }
  auto value = context.expand(entry);
  if (!value) return;
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
}

// Documentation=: URIs, appended; an empty value resets the list.
struct Words {
  static void apply(std::vector<std::string>& field, const Entry& entry, ParseContext& context) {
    auto words = list_words(entry, context);
    if (!words) return;
    for (auto& w : *words) field.push_back(std::move(w));
  }
};

constexpr KeyRow<UnitInfo> kUnitRows[] = {
    {"Description", KeySupport::honoured, set<&UnitInfo::description, Text>},
    {"Documentation", KeySupport::honoured, set<&UnitInfo::documentation, OrReset<Words>>},
};

constexpr KeyGroup kUnitGroups[] = {{kSilentUnitKeys, KeySupport::ignored}};

constexpr SectionTable<UnitInfo> kUnitTable = {"Unit", kUnitRows, kUnitGroups};

}  // namespace

KeyGroup sandboxing_group() {
  return {kSandboxingKeys, KeySupport::not_enforced};
}

bool is_sandboxing_key(std::string_view key) {
  return std::find(std::begin(kSandboxingKeys), std::end(kSandboxingKeys), key) !=
         std::end(kSandboxingKeys);
}

bool apply_unit_entry(UnitInfo& info, const Entry& entry, ParseContext& context) {
  if (entry.section == "Install") return true;  // enablement is the package's business
  std::string_view key = entry.key;
  // Condition*= rows are a prefix, not a list: an unknown kind is still a condition.
  if (key.starts_with(kCondition) && key.size() > kCondition.size()) {
    apply_condition(info, entry, context, key.substr(kCondition.size()), false);
    return true;
  }
  if (key.starts_with(kAssert) && key.size() > kAssert.size()) {
    apply_condition(info, entry, context, key.substr(kAssert.size()), true);
    return true;
  }
  return apply_key(kUnitTable, info, entry, context);
}

void list_unit_keys(std::vector<KnownKey>& out) {
  list_keys(kUnitTable, out);
  for (std::string_view name : kConditionKeys) out.push_back({"Unit", name, KeySupport::honoured});
  for (std::string_view name : kInstallKeys) out.push_back({"Install", name, KeySupport::ignored});
}

}  // namespace usherd::units

// [Service] keys (systemd.service(5), systemd.exec(5), systemd.kill(5)) and the checks that
// decide whether a service can be loaded (systemd's service_verify()).
//
// The keys are one table (key_table.h): a row per key, each parsed by its kind (key_kinds.h)
// or, for the few with rules of their own, by a function here. Environment files are read here,
// through the caller's FileReader, so the unit carries its final environment: Environment=
// assignments first, then each EnvironmentFile= in order, later assignments replacing earlier
// ones (systemd: files override Environment=).
#include <sys/resource.h>

#include <algorithm>
#include <memory>

#include "units/environment.h"
#include "units/key_kinds.h"
#include "units/key_table.h"
#include "units/parse_context.h"
#include "units/resource_limit.h"
#include "units/unit_parser.h"
#include "units/values.h"

namespace usherd::units {

const std::vector<std::string_view> kServiceSections = {"Unit", "Service", "Install"};

namespace {

// Keys whose absence of effect is harmless: logging labels and accounting switches.
constexpr std::string_view kSilentServiceKeys[] = {
    "SyslogIdentifier", "SyslogFacility", "SyslogLevel",      "SyslogLevelPrefix",
    "LogLevelMax",      "CPUAccounting",  "MemoryAccounting", "TasksAccounting",
    "IOAccounting",     "IPAccounting",   "GuessMainPID",     "LogExtraFields"};

// Resource-control keys (systemd.resource-control(5)) need cgroups usherd does not manage.
constexpr std::string_view kResourceControlKeys[] = {
    "Slice",     "Delegate",  "TasksMax",      "MemoryMax",  "MemoryHigh",
    "MemoryLow", "MemoryMin", "MemorySwapMax", "CPUQuota",   "CPUWeight",
    "IOWeight",  "CPUShares", "MemoryLimit",   "AllowedCPUs"};

// Known keys with behaviour usherd does not implement: warned about, so nobody relies on them.
constexpr std::string_view kUnsupportedServiceKeys[] = {"PassEnvironment",
                                                        "ExecStopPost",
                                                        "ExecCondition",
                                                        "PIDFile",
                                                        "WatchdogSec",
                                                        "RemainAfterExit",
                                                        "SuccessExitStatus",
                                                        "OOMScoreAdjust",
                                                        "CPUSchedulingPolicy",
                                                        "CPUSchedulingPriority",
                                                        "IOSchedulingClass",
                                                        "IOSchedulingPriority",
                                                        "TTYPath",
                                                        "SendSIGHUP",
                                                        "SendSIGKILL",
                                                        "FinalKillSignal",
                                                        "RestartKillSignal",
                                                        "TimeoutAbortSec",
                                                        "RuntimeMaxSec",
                                                        "FileDescriptorStoreMax",
                                                        "Sockets",
                                                        "BusName",
                                                        "StateDirectory",
                                                        "LogsDirectory",
                                                        "CacheDirectory",
                                                        "ConfigurationDirectory"};

// systemd's relaxed user/group name rule: no whitespace, ':' or '/', not empty, not too long.
bool is_valid_user_group_name(std::string_view name) {
  if (name.empty() || name.size() > 256 || name.front() == '-') return false;
  for (char c : name) {
    if (is_whitespace(c) || c == ':' || c == '/' || static_cast<unsigned char>(c) < 0x20)
      return false;
  }
  return true;
}

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

struct EnvironmentFileRef {
  std::string path;
  bool optional = false;
  const Entry* entry = nullptr;
};

// What the [Service] rows write: the unit, and what is resolved after the last entry.
struct ServiceState {
  ServiceUnit unit;
  std::vector<std::string> assignments;  // Environment=, before files
  std::vector<EnvironmentFileRef> files;
  std::optional<NotifyAccess> notify_access;
  bool bad_credentials = false;  // User=/Group= named no valid user: refused
};

constexpr Word<ServiceType> kTypes[] = {
    {"simple", ServiceType::simple}, {"exec", ServiceType::exec},
    {"notify", ServiceType::notify}, {"oneshot", ServiceType::oneshot},
    {"idle", ServiceType::simple},   {"notify-reload", ServiceType::notify}};
constexpr Word<StdInput> kInputs[] = {{"null", StdInput::null}, {"socket", StdInput::socket}};
constexpr Word<StdOutput> kOutputs[] = {{"inherit", StdOutput::inherit},
                                        {"null", StdOutput::null},
                                        {"socket", StdOutput::socket},
                                        {"journal", StdOutput::journal}};
constexpr Word<NotifyAccess> kNotifyAccess[] = {{"none", NotifyAccess::none},
                                                {"main", NotifyAccess::main},
                                                {"exec", NotifyAccess::exec},
                                                {"all", NotifyAccess::all}};
constexpr std::string_view kNotifyAccessReason = "expected none, main, exec or all";
constexpr Word<KillMode> kKillModes[] = {{"control-group", KillMode::control_group},
                                         {"mixed", KillMode::mixed},
                                         {"process", KillMode::process},
                                         {"none", KillMode::none}};
constexpr std::string_view kKillModeReason = "expected control-group, mixed, process or none";
constexpr Word<RestartPolicy> kRestart[] = {{"no", RestartPolicy::no},
                                            {"on-success", RestartPolicy::on_success},
                                            {"on-failure", RestartPolicy::on_failure},
                                            {"on-abnormal", RestartPolicy::on_abnormal},
                                            {"on-watchdog", RestartPolicy::on_watchdog},
                                            {"on-abort", RestartPolicy::on_abort},
                                            {"always", RestartPolicy::always}};
constexpr std::string_view kRestartReason = "unknown restart policy";
constexpr Word<RuntimeDirectoryPreserve> kPreserve[] = {
    {"no", RuntimeDirectoryPreserve::no},           {"yes", RuntimeDirectoryPreserve::yes},
    {"restart", RuntimeDirectoryPreserve::restart}, {"false", RuntimeDirectoryPreserve::no},
    {"true", RuntimeDirectoryPreserve::yes},        {"0", RuntimeDirectoryPreserve::no},
    {"1", RuntimeDirectoryPreserve::yes},           {"off", RuntimeDirectoryPreserve::no},
    {"on", RuntimeDirectoryPreserve::yes}};
constexpr std::string_view kPreserveReason = "expected no, yes or restart";

// X-ExitStatusOutcomes=: the table that maps an instance's end to its source's penalty.
Result<policy::ExitStatusOutcomes> parse_exit_status_outcomes(std::string_view text) {
  if (auto table = policy::parse_exit_status_outcomes(text)) return *table;
  return fail("expected openssh or legacy");
}

// UMask=: octal, at most 0777.
Result<mode_t> parse_umask(std::string_view text) {
  auto m = parse_mode(text);
  if (!m || *m > 0777) return fail("expected an octal mask up to 0777");
  return *m;
}

// Nice=: -20..19.
Result<int> parse_nice(std::string_view text) {
  auto n = parse_integer(text, -20, 19);
  if (!n) return tl::unexpected(n.error());
  return static_cast<int>(*n);
}

// User=, Group=: a name that cannot be used refuses the whole unit.
template <auto Member>
void credential(ServiceState& state, const Entry& entry, ParseContext& context) {
  std::optional<std::string>& field = state.unit.*Member;
  if (entry.value.empty()) {
    field.reset();
    return;
  }
  auto value = context.expand(entry);
  if (!value) return;
  if (!is_valid_user_group_name(*value)) {
    // Ignoring it would run the service as root, which the unit asked not to: refused,
    // as systemd refuses such a unit since v246.
    context.sink.error(entry.file, entry.line,
                       "Invalid user/group name or numeric ID in " + entry.key + "=" + entry.value +
                           ". Refusing.");
    state.bad_credentials = true;
    return;
  }
  field = std::move(*value);
}

// SupplementaryGroups=: one invalid name rejects the whole assignment.
void supplementary_groups(ServiceState& state, const Entry& entry, ParseContext& context) {
  std::vector<std::string>& groups = state.unit.supplementary_groups;
  if (entry.value.empty()) return groups.clear();
  auto words = list_words(entry, context);
  if (!words) return;
  for (auto& w : *words) {
    if (!is_valid_user_group_name(w)) return context.invalid(entry, "not a valid group name: " + w);
  }
  groups.insert(groups.end(), words->begin(), words->end());
}

// Environment=: C-escaped, quoted assignments; a bad one is skipped, the rest apply.
void environment(ServiceState& state, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) return state.assignments.clear();
  auto value = context.expand(entry);
  if (!value) return;
  auto words = split_words(*value, extract_unquote | extract_cunescape);
  if (!words) return context.invalid(entry, words.error().message);
  for (auto& w : *words) {
    if (!is_valid_environment_assignment(w)) {
      context.sink.warning(entry.file, entry.line,
                           "Invalid environment assignment, ignoring: " + w);
      continue;
    }
    set_environment(state.assignments, std::move(w));
  }
}

// EnvironmentFile=: an absolute path, "-" for optional; read after the last entry.
void environment_file(ServiceState& state, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) return state.files.clear();
  auto value = context.expand(entry);
  if (!value) return;
  std::string_view p = *value;
  bool optional = !p.empty() && p.front() == '-';
  if (optional) p.remove_prefix(1);
  if (p.empty() || p.front() != '/') return context.invalid(entry, "path is not absolute");
  state.files.push_back({std::string(p), optional, &entry});
  state.unit.environment_files.push_back(*value);
}

// UnsetEnvironment=: names or assignments; a bad word is skipped.
void unset_environment(ServiceState& state, const Entry& entry, ParseContext& context) {
  std::vector<std::string>& unset = state.unit.unset_environment;
  if (entry.value.empty()) return unset.clear();
  auto words = list_words(entry, context);
  if (!words) return;
  for (auto& w : *words) {
    if (!is_valid_environment_name(w) && !is_valid_environment_assignment(w)) {
      context.sink.warning(entry.file, entry.line,
                           "Invalid environment name or assignment, ignoring: " + w);
      continue;
    }
    unset.push_back(std::move(w));
  }
}

// WorkingDirectory=: absolute, "~" (the user's home), "-" prefix when it may be missing.
void working_directory(ServiceState& state, const Entry& entry, ParseContext& context) {
  ServiceUnit& s = state.unit;
  if (entry.value.empty()) {
    s.working_directory.reset();
    s.working_directory_missing_ok = false;
    return;
  }
  auto value = context.expand(entry);
  if (!value) return;
  std::string_view p = *value;
  bool missing_ok = !p.empty() && p.front() == '-';
  if (missing_ok) p.remove_prefix(1);
  if (p != "~" && (p.empty() || p.front() != '/'))
    return context.invalid(entry, "path is not absolute");
  s.working_directory = std::string(p);
  s.working_directory_missing_ok = missing_ok;
}

// RootDirectory=: absolute.
void root_directory(ServiceState& state, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) return state.unit.root_directory.reset();
  auto value = context.expand(entry);
  if (!value) return;
  if (value->empty() || value->front() != '/')
    return context.invalid(entry, "path is not absolute");
  state.unit.root_directory = std::move(*value);
}

// Limit*=: one limit per resource, the last assignment winning.
template <int Resource>
void limit(ServiceState& state, const Entry& entry, ParseContext& context) {
  auto parsed = parse_resource_limit(Resource, entry.value);
  if (!parsed) return context.invalid(entry, parsed.error().message);
  auto same = [&](const ResourceLimit& l) { return l.resource == parsed->resource; };
  std::erase_if(state.unit.limits, same);
  state.unit.limits.push_back(*parsed);
}

// TimeoutSec=: TimeoutStartSec= and TimeoutStopSec= at once (the stop timeout follows the
// start timeout even when the value is rejected, as it always has here).
void timeout(ServiceState& state, const Entry& entry, ParseContext& context) {
  Value<timespan_zero_is_infinity>::apply(state.unit.timeout_start, entry, context);
  state.unit.timeout_stop = state.unit.timeout_start;
}

// RestartPreventExitStatus=: exit codes and signal names; a bad word is skipped.
void restart_prevent_exit_status(ServiceState& state, const Entry& entry, ParseContext& context) {
  ServiceUnit& s = state.unit;
  if (entry.value.empty()) {
    s.restart_prevent_exit_status.clear();
    s.restart_prevent_signals.clear();
    return;
  }
  auto words = split_words(entry.value, 0);
  if (!words) return context.invalid(entry, words.error().message);
  for (const auto& w : *words) {
    if (auto code = parse_unsigned(w, 255)) {
      s.restart_prevent_exit_status.push_back(static_cast<int>(*code));
    } else if (auto sig = parse_signal(w); sig && !w.empty() && !(w[0] >= '0' && w[0] <= '9')) {
      s.restart_prevent_signals.push_back(*sig);
    } else {
      context.sink.warning(entry.file, entry.line,
                           "Failed to parse RestartPreventExitStatus= entry, ignoring: " + w);
    }
  }
}

// RuntimeDirectory=: safe relative paths under /run, each once; a bad one is skipped.
void runtime_directory(ServiceState& state, const Entry& entry, ParseContext& context) {
  std::vector<std::string>& dirs = state.unit.runtime_directory;
  if (entry.value.empty()) return dirs.clear();
  auto words = list_words(entry, context);
  if (!words) return;
  for (auto& w : *words) {
    if (!is_safe_relative_path(w)) {
      context.sink.warning(entry.file, entry.line,
                           "RuntimeDirectory= path is not a valid relative path, ignoring: " + w);
      continue;
    }
    if (std::find(dirs.begin(), dirs.end(), w) == dirs.end()) dirs.push_back(std::move(w));
  }
}

using S = ServiceUnit;
using Support = KeySupport;

// [Service]: systemd.service(5), systemd.exec(5), systemd.kill(5), then usherd's X- keys.
constexpr KeyRow<ServiceState> kServiceRows[] = {
    {"Type", Support::honoured, set<&S::type, Enum<kTypes>>},
    {"ExecStart", Support::honoured, set<&S::exec_start, ExecList>},
    {"ExecStartPre", Support::honoured, set<&S::exec_start_pre, ExecList>},
    {"ExecStartPost", Support::honoured, set<&S::exec_start_post, ExecList>},
    {"ExecReload", Support::honoured, set<&S::exec_reload, ExecList>},
    {"ExecStop", Support::honoured, set<&S::exec_stop, ExecList>},
    {"User", Support::honoured, credential<&S::user>},
    {"Group", Support::honoured, credential<&S::group>},
    {"SupplementaryGroups", Support::honoured, supplementary_groups},
    {"Environment", Support::honoured, environment},
    {"EnvironmentFile", Support::honoured, environment_file},
    {"UnsetEnvironment", Support::honoured, unset_environment},
    {"WorkingDirectory", Support::honoured, working_directory},
    {"RootDirectory", Support::honoured, root_directory},
    {"UMask", Support::honoured, set<&S::umask, Value<parse_umask>>},
    {"Nice", Support::honoured, set<&S::nice, Value<parse_nice>>},
    {"LimitCPU", Support::honoured, limit<RLIMIT_CPU>},
    {"LimitFSIZE", Support::honoured, limit<RLIMIT_FSIZE>},
    {"LimitDATA", Support::honoured, limit<RLIMIT_DATA>},
    {"LimitSTACK", Support::honoured, limit<RLIMIT_STACK>},
    {"LimitCORE", Support::honoured, limit<RLIMIT_CORE>},
    {"LimitRSS", Support::honoured, limit<RLIMIT_RSS>},
    {"LimitNOFILE", Support::honoured, limit<RLIMIT_NOFILE>},
    {"LimitAS", Support::honoured, limit<RLIMIT_AS>},
    {"LimitNPROC", Support::honoured, limit<RLIMIT_NPROC>},
    {"LimitMEMLOCK", Support::honoured, limit<RLIMIT_MEMLOCK>},
    {"LimitLOCKS", Support::honoured, limit<RLIMIT_LOCKS>},
    {"LimitSIGPENDING", Support::honoured, limit<RLIMIT_SIGPENDING>},
    {"LimitMSGQUEUE", Support::honoured, limit<RLIMIT_MSGQUEUE>},
    {"LimitNICE", Support::honoured, limit<RLIMIT_NICE>},
    {"LimitRTPRIO", Support::honoured, limit<RLIMIT_RTPRIO>},
    {"LimitRTTIME", Support::honoured, limit<RLIMIT_RTTIME>},
    {"StandardInput", Support::honoured, set<&S::standard_input, Enum<kInputs>>},
    {"StandardOutput", Support::honoured, set<&S::standard_output, Enum<kOutputs>>},
    {"StandardError", Support::honoured, set<&S::standard_error, Enum<kOutputs>>},
    {"NotifyAccess", Support::honoured,
     set<&ServiceState::notify_access, Enum<kNotifyAccess, &kNotifyAccessReason>>},
    {"KillMode", Support::honoured, set<&S::kill_mode, Enum<kKillModes, &kKillModeReason>>},
    {"KillSignal", Support::honoured, set<&S::kill_signal, Value<parse_signal>>},
    {"TimeoutStopSec", Support::honoured, set<&S::timeout_stop, Value<timespan_zero_is_infinity>>},
    {"TimeoutStartSec", Support::honoured,
     set<&S::timeout_start, Value<timespan_zero_is_infinity>>},
    {"TimeoutSec", Support::honoured, timeout},
    {"Restart", Support::honoured, set<&S::restart, Enum<kRestart, &kRestartReason>>},
    {"RestartSec", Support::honoured, set<&S::restart_sec, Value<timespan>>},
    {"RestartPreventExitStatus", Support::honoured, restart_prevent_exit_status},
    {"RuntimeDirectory", Support::honoured, runtime_directory},
    {"RuntimeDirectoryMode", Support::honoured, set<&S::runtime_directory_mode, Value<parse_mode>>},
    {"RuntimeDirectoryPreserve", Support::honoured,
     set<&S::runtime_directory_preserve, Enum<kPreserve, &kPreserveReason>>},
    {"NoNewPrivileges", Support::honoured, set<&S::no_new_privileges, Bool>},
    {"X-ReadyLog", Support::extension, set<&S::ready_log, OrReset<Raw>>},
    {"X-ExitStatusOutcomes", Support::extension,
     set<&S::exit_status_outcomes, OrReset<Value<parse_exit_status_outcomes>>>},
};

const SectionTable<ServiceState>& service_table() {
  // Built on first use: the sandboxing group lives in another file.
  static const KeyGroup groups[] = {{kSilentServiceKeys, Support::ignored},
                                    sandboxing_group(),
                                    {kResourceControlKeys, Support::not_enforced},
                                    {kUnsupportedServiceKeys, Support::unsupported}};
  static const SectionTable<ServiceState> table = {"Service", kServiceRows, groups};
  return table;
}

// Reads every EnvironmentFile= and builds the final environment; false when a required file
// could not be read (the service could never start, so it is refused).
bool build_environment(ServiceState& state, const FileReader& read, TemplateSource* cache,
                       DiagnosticSink& sink) {
  ServiceUnit& s = state.unit;
  s.environment = state.assignments;
  bool ok = true;
  for (const EnvironmentFileRef& ref : state.files) {
    auto text = read(ref.path);
    if (!text) {
      if (!ref.optional) {
        sink.error(ref.entry->file, ref.entry->line,
                   "Failed to load environment file " + ref.path + ": " + text.error().to_string() +
                       ". Refusing.");
        ok = false;
      }
      continue;
    }
    auto contents = parse_environment_file(*text);
    for (unsigned line : contents.invalid_lines) {
      sink.warning(ref.path, line, "Invalid environment assignment, ignoring line.");
    }
    for (auto& a : contents.assignments) set_environment(s.environment, std::move(a));
    if (cache != nullptr) cache->environment_files.emplace_back(ref.path, std::move(*text));
  }
  return ok;
}

}  // namespace

std::optional<ServiceUnit> parse_service_unit(const UnitName& name, const std::string& path,
                                              const std::vector<Entry>& entries,
                                              const FileReader& read,
                                              std::vector<Diagnostic>& diagnostics) {
  DiagnosticSink sink(diagnostics);
  ParseContext context{name, sink};
  ServiceState state;
  ServiceUnit& s = state.unit;
  s.name = name.name;
  s.path = path;
  s.is_template = name.is_template();
  s.instance = name.instance;
  for (const Entry& entry : entries) {
    if (entry.file != path && std::find(s.info.drop_ins.begin(), s.info.drop_ins.end(),
                                        entry.file) == s.info.drop_ins.end())
      s.info.drop_ins.push_back(entry.file);
    if (entry.section == "Service") {
      if (!apply_key(service_table(), state, entry, context)) context.unknown_key(entry);
    } else if (!apply_unit_entry(s.info, entry, context)) {
      context.unknown_key(entry);
    }
  }
  s.uses_instance_specifiers = context.uses_instance;
  s.notify_access = state.notify_access.value_or(
      s.type == ServiceType::notify ? NotifyAccess::main : NotifyAccess::none);

  std::shared_ptr<TemplateSource> source;
  if (s.is_template) {
    source = std::make_shared<TemplateSource>();
    source->entries = entries;
  }
  if (state.bad_credentials) return std::nullopt;
  if (!build_environment(state, read, source.get(), sink)) return std::nullopt;
  if (source) s.source = std::move(source);

  // systemd's service_verify().
  if (s.exec_start.empty() && s.exec_stop.empty()) {
    sink.error(path, 0, "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.");
    return std::nullopt;
  }
  if (s.type != ServiceType::oneshot && s.exec_start.empty()) {
    sink.error(path, 0,
               "Service has no ExecStart= setting, which is only allowed for Type=oneshot "
               "services. Refusing.");
    return std::nullopt;
  }
  if (s.type != ServiceType::oneshot && s.exec_start.size() > 1) {
    sink.error(path, 0,
               "Service has more than one ExecStart= setting, which is only allowed for "
               "Type=oneshot services. Refusing.");
    return std::nullopt;
  }
  if (s.type == ServiceType::oneshot &&
      (s.restart == RestartPolicy::always || s.restart == RestartPolicy::on_success)) {
    sink.error(path, 0,
               "Service has Restart= set to either always or on-success, which isn't allowed "
               "for Type=oneshot services. Refusing.");
    return std::nullopt;
  }
  return std::move(s);
}

std::optional<ServiceUnit> parse_service_text(const UnitName& name, const std::string& path,
                                              std::string_view text, const FileReader& read,
                                              std::vector<Diagnostic>& diagnostics) {
  auto entries = parse_unit_text(text, path, kServiceSections, diagnostics);
  return parse_service_unit(name, path, entries, read, diagnostics);
}

std::vector<KnownKey> known_service_keys() {
  std::vector<KnownKey> keys;
  list_unit_keys(keys);
  list_keys(service_table(), keys);
  return keys;
}

}  // namespace usherd::units

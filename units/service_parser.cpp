// [Service] keys (systemd.service(5), systemd.exec(5), systemd.kill(5)) and the checks that
// decide whether a service can be loaded (systemd's service_verify()).
//
// The file is one table of keys, hence its length. Environment files are read here, through
// the caller's FileReader, so the unit carries its final environment: Environment=
// assignments first, then each EnvironmentFile= in order, later assignments replacing earlier
// ones (systemd: files override Environment=).
#include <algorithm>
#include <array>
#include <memory>

#include "units/environment.h"
#include "units/exec_command.h"
#include "units/parse_context.h"
#include "units/resource_limit.h"
#include "units/unit_parser.h"
#include "units/values.h"

namespace usherd::units {

const std::vector<std::string_view> kServiceSections = {"Unit", "Service", "Install"};

namespace {

// Keys whose absence of effect is harmless: logging labels and accounting switches.
constexpr std::array<std::string_view, 12> kSilentServiceKeys = {
    "SyslogIdentifier", "SyslogFacility", "SyslogLevel",      "SyslogLevelPrefix",
    "LogLevelMax",      "CPUAccounting",  "MemoryAccounting", "TasksAccounting",
    "IOAccounting",     "IPAccounting",   "GuessMainPID",     "LogExtraFields"};

// Resource-control keys (systemd.resource-control(5)) need cgroups usherd does not manage.
constexpr std::array<std::string_view, 14> kResourceControlKeys = {
    "Slice",     "Delegate",  "TasksMax",      "MemoryMax",  "MemoryHigh",
    "MemoryLow", "MemoryMin", "MemorySwapMax", "CPUQuota",   "CPUWeight",
    "IOWeight",  "CPUShares", "MemoryLimit",   "AllowedCPUs"};

// Known keys with behaviour usherd does not implement: warned about, so nobody relies on them.
constexpr std::array<std::string_view, 26> kUnsupportedServiceKeys = {"PassEnvironment",
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

bool in(const auto& table, std::string_view key) {
  return std::find(table.begin(), table.end(), key) != table.end();
}

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

struct ServiceState {
  ServiceUnit service;
  std::vector<std::string> assignments;  // Environment=, before files
  std::vector<EnvironmentFileRef> files;
  std::optional<NotifyAccess> notify_access;
  bool bad_credentials = false;  // User=/Group= named no valid user: refused
};

template <class Enum, std::size_t N>
std::optional<Enum> lookup(std::string_view word,
                           const std::pair<std::string_view, Enum> (&table)[N]) {
  for (const auto& [text, value] : table) {
    if (text == word) return value;
  }
  return std::nullopt;
}

constexpr std::pair<std::string_view, ServiceType> kTypes[] = {
    {"simple", ServiceType::simple}, {"exec", ServiceType::exec},
    {"notify", ServiceType::notify}, {"oneshot", ServiceType::oneshot},
    {"idle", ServiceType::simple},   {"notify-reload", ServiceType::notify}};
constexpr std::pair<std::string_view, StdOutput> kOutputs[] = {{"inherit", StdOutput::inherit},
                                                               {"null", StdOutput::null},
                                                               {"socket", StdOutput::socket},
                                                               {"journal", StdOutput::journal}};
constexpr std::pair<std::string_view, NotifyAccess> kNotifyAccess[] = {{"none", NotifyAccess::none},
                                                                       {"main", NotifyAccess::main},
                                                                       {"exec", NotifyAccess::exec},
                                                                       {"all", NotifyAccess::all}};
constexpr std::pair<std::string_view, KillMode> kKillModes[] = {
    {"control-group", KillMode::control_group},
    {"mixed", KillMode::mixed},
    {"process", KillMode::process},
    {"none", KillMode::none}};
constexpr std::pair<std::string_view, RestartPolicy> kRestart[] = {
    {"no", RestartPolicy::no},
    {"on-success", RestartPolicy::on_success},
    {"on-failure", RestartPolicy::on_failure},
    {"on-abnormal", RestartPolicy::on_abnormal},
    {"on-watchdog", RestartPolicy::on_watchdog},
    {"on-abort", RestartPolicy::on_abort},
    {"always", RestartPolicy::always}};
constexpr std::pair<std::string_view, RuntimeDirectoryPreserve> kPreserve[] = {
    {"no", RuntimeDirectoryPreserve::no},           {"yes", RuntimeDirectoryPreserve::yes},
    {"restart", RuntimeDirectoryPreserve::restart}, {"false", RuntimeDirectoryPreserve::no},
    {"true", RuntimeDirectoryPreserve::yes},        {"0", RuntimeDirectoryPreserve::no},
    {"1", RuntimeDirectoryPreserve::yes},           {"off", RuntimeDirectoryPreserve::no},
    {"on", RuntimeDirectoryPreserve::yes}};

// Words of a list-valued key (after specifiers); empty value resets the list.
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

void apply_exec(std::vector<ExecCommand>& list, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) {
    list.clear();
    return;
  }
  auto value = context.expand(entry);
  if (!value) return;
  auto commands = parse_exec_value(*value);
  if (!commands) return context.invalid(entry, commands.error().message);
  for (auto& c : *commands) list.push_back(std::move(c));
}

void apply_duration(Duration& field, const Entry& entry, ParseContext& context,
                    bool zero_is_infinity) {
  auto d = parse_timespan(entry.value);
  if (!d) return context.invalid(entry, d.error().message);
  field = (zero_is_infinity && d->count() == 0) ? kInfiniteDuration : *d;
}

void apply_service_entry(ServiceState& state, const Entry& entry, ParseContext& context) {
  ServiceUnit& s = state.service;
  const std::string& key = entry.key;
  auto choose = [&](auto& field, const auto& table) {
    if (auto v = lookup(entry.value, table)) {
      field = *v;
    } else {
      context.unsupported_value(entry);
    }
  };
  auto name = [&](std::optional<std::string>& field) {
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
                         "Invalid user/group name or numeric ID in " + entry.key + "=" +
                             entry.value + ". Refusing.");
      state.bad_credentials = true;
      return;
    }
    field = std::move(*value);
  };

  if (key == "Type") return choose(s.type, kTypes);
  if (key == "ExecStart") return apply_exec(s.exec_start, entry, context);
  if (key == "ExecStartPre") return apply_exec(s.exec_start_pre, entry, context);
  if (key == "ExecStartPost") return apply_exec(s.exec_start_post, entry, context);
  if (key == "ExecReload") return apply_exec(s.exec_reload, entry, context);
  if (key == "ExecStop") return apply_exec(s.exec_stop, entry, context);
  if (key == "User") return name(s.user);
  if (key == "Group") return name(s.group);
  if (key == "SupplementaryGroups") {
    if (entry.value.empty()) return s.supplementary_groups.clear();
    auto words = list_words(entry, context);
    if (!words) return;
    for (auto& w : *words) {
      if (!is_valid_user_group_name(w))
        return context.invalid(entry, "not a valid group name: " + w);
    }
    s.supplementary_groups.insert(s.supplementary_groups.end(), words->begin(), words->end());
    return;
  }
  if (key == "Environment") {
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
    return;
  }
  if (key == "EnvironmentFile") {
    if (entry.value.empty()) return state.files.clear();
    auto value = context.expand(entry);
    if (!value) return;
    std::string_view p = *value;
    bool optional = !p.empty() && p.front() == '-';
    if (optional) p.remove_prefix(1);
    if (p.empty() || p.front() != '/') return context.invalid(entry, "path is not absolute");
    state.files.push_back({std::string(p), optional, &entry});
    s.environment_files.push_back(*value);
    return;
  }
  if (key == "UnsetEnvironment") {
    if (entry.value.empty()) return s.unset_environment.clear();
    auto words = list_words(entry, context);
    if (!words) return;
    for (auto& w : *words) {
      if (!is_valid_environment_name(w) && !is_valid_environment_assignment(w)) {
        context.sink.warning(entry.file, entry.line,
                             "Invalid environment name or assignment, ignoring: " + w);
        continue;
      }
      s.unset_environment.push_back(std::move(w));
    }
    return;
  }
  if (key == "WorkingDirectory" || key == "RootDirectory") {
    auto& field = key == "WorkingDirectory" ? s.working_directory : s.root_directory;
    if (entry.value.empty()) {
      field.reset();
      if (key == "WorkingDirectory") s.working_directory_missing_ok = false;
      return;
    }
    auto value = context.expand(entry);
    if (!value) return;
    std::string_view p = *value;
    bool missing_ok = key == "WorkingDirectory" && !p.empty() && p.front() == '-';
    if (missing_ok) p.remove_prefix(1);
    bool home = key == "WorkingDirectory" && p == "~";
    if (!home && (p.empty() || p.front() != '/'))
      return context.invalid(entry, "path is not absolute");
    field = std::string(p);
    if (key == "WorkingDirectory") s.working_directory_missing_ok = missing_ok;
    return;
  }
  if (key == "UMask") {
    auto m = parse_mode(entry.value);
    if (!m || *m > 0777) return context.invalid(entry, "expected an octal mask up to 0777");
    s.umask = *m;
    return;
  }
  if (key == "Nice") {
    auto n = parse_integer(entry.value, -20, 19);
    if (!n) return context.invalid(entry, n.error().message);
    s.nice = static_cast<int>(*n);
    return;
  }
  if (auto resource = resource_for_key(key)) {
    auto limit = parse_resource_limit(*resource, entry.value);
    if (!limit) return context.invalid(entry, limit.error().message);
    auto same = [&](const ResourceLimit& l) { return l.resource == limit->resource; };
    std::erase_if(s.limits, same);
    s.limits.push_back(*limit);
    return;
  }
  if (key == "StandardInput") {
    if (entry.value == "null") {
      s.standard_input = StdInput::null;
    } else if (entry.value == "socket") {
      s.standard_input = StdInput::socket;
    } else {
      context.unsupported_value(entry);
    }
    return;
  }
  if (key == "StandardOutput") return choose(s.standard_output, kOutputs);
  if (key == "StandardError") return choose(s.standard_error, kOutputs);
  if (key == "NotifyAccess") {
    if (auto v = lookup(entry.value, kNotifyAccess)) {
      state.notify_access = *v;
    } else {
      context.invalid(entry, "expected none, main, exec or all");
    }
    return;
  }
  if (key == "KillMode") {
    if (auto v = lookup(entry.value, kKillModes)) {
      s.kill_mode = *v;
    } else {
      context.invalid(entry, "expected control-group, mixed, process or none");
    }
    return;
  }
  if (key == "KillSignal") {
    auto sig = parse_signal(entry.value);
    if (!sig) return context.invalid(entry, sig.error().message);
    s.kill_signal = *sig;
    return;
  }
  if (key == "TimeoutStopSec") return apply_duration(s.timeout_stop, entry, context, true);
  if (key == "TimeoutStartSec") return apply_duration(s.timeout_start, entry, context, true);
  if (key == "TimeoutSec") {
    apply_duration(s.timeout_start, entry, context, true);
    s.timeout_stop = s.timeout_start;
    return;
  }
  if (key == "Restart") {
    if (auto v = lookup(entry.value, kRestart)) {
      s.restart = *v;
    } else {
      context.invalid(entry, "unknown restart policy");
    }
    return;
  }
  if (key == "RestartSec") return apply_duration(s.restart_sec, entry, context, false);
  if (key == "RestartPreventExitStatus") {
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
    return;
  }
  if (key == "RuntimeDirectory") {
    if (entry.value.empty()) return s.runtime_directory.clear();
    auto words = list_words(entry, context);
    if (!words) return;
    for (auto& w : *words) {
      if (!is_safe_relative_path(w)) {
        context.sink.warning(entry.file, entry.line,
                             "RuntimeDirectory= path is not a valid relative path, ignoring: " + w);
        continue;
      }
      if (std::find(s.runtime_directory.begin(), s.runtime_directory.end(), w) ==
          s.runtime_directory.end())
        s.runtime_directory.push_back(std::move(w));
    }
    return;
  }
  if (key == "RuntimeDirectoryMode") {
    auto m = parse_mode(entry.value);
    if (!m) return context.invalid(entry, m.error().message);
    s.runtime_directory_mode = *m;
    return;
  }
  if (key == "RuntimeDirectoryPreserve") {
    if (auto v = lookup(entry.value, kPreserve)) {
      s.runtime_directory_preserve = *v;
    } else {
      context.invalid(entry, "expected no, yes or restart");
    }
    return;
  }
  if (key == "NoNewPrivileges") {
    if (auto b = context.boolean(entry)) s.no_new_privileges = *b;
    return;
  }
  if (key == "X-ReadyLog") {
    if (entry.value.empty()) {
      s.ready_log.reset();
    } else {
      s.ready_log = entry.value;
    }
    return;
  }
  if (in(kSilentServiceKeys, key)) return;
  if (is_sandboxing_key(key) || in(kResourceControlKeys, key)) return context.not_enforced(entry);
  if (in(kUnsupportedServiceKeys, key)) {
    context.sink.warning(entry.file, entry.line, key + "= is not supported by usherd, ignoring.");
    return;
  }
  context.unknown_key(entry);
}

// Reads every EnvironmentFile= and builds the final environment; false when a required file
// could not be read (the service could never start, so it is refused).
bool build_environment(ServiceState& state, const FileReader& read, TemplateSource* cache,
                       DiagnosticSink& sink) {
  ServiceUnit& s = state.service;
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
  ServiceUnit& s = state.service;
  s.name = name.name;
  s.path = path;
  s.is_template = name.is_template();
  s.instance = name.instance;
  for (const Entry& entry : entries) {
    if (entry.file != path && std::find(s.info.drop_ins.begin(), s.info.drop_ins.end(),
                                        entry.file) == s.info.drop_ins.end())
      s.info.drop_ins.push_back(entry.file);
    if (entry.section == "Service") {
      apply_service_entry(state, entry, context);
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

}  // namespace usherd::units

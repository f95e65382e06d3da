// xinetd's rules for defaults, operators and repeated attributes; see xinetd_service.h.
#include <algorithm>
#include <array>

#include "importer/xinetd_service.h"

namespace usherd::importer {
namespace {

// parse.c's attribute tables: how many values each takes (a positive number exactly, -1 any
// number, -2 any number and the list operators '+=' / '-=').
struct AttributeInfo {
  std::string_view name;
  int values;
};

constexpr std::array<AttributeInfo, 45> kServiceAttributes = {{
    {"socket_type", 1},
    {"protocol", 1},
    {"wait", 1},
    {"user", 1},
    {"group", 1},
    {"server", 1},
    {"server_args", -1},
    {"instances", 1},
    {"log_on_success", -2},
    {"log_on_failure", -2},
    {"log_type", -1},
    {"only_from", -2},
    {"no_access", -2},
    {"access_times", -1},
    {"type", -1},
    {"rpc_version", 1},
    {"rpc_number", 1},
    {"id", 1},
    {"env", -2},
    {"port", 1},
    {"passenv", -2},
    {"flags", -1},
    {"nice", 1},
    {"redirect", 2},
    {"banner", 1},
    {"bind", 1},
    {"interface", 1},
    {"per_source", 1},
    {"groups", 1},
    {"banner_success", 1},
    {"banner_fail", 1},
    {"cps", 2},
    {"disable", 1},
    {"max_load", 1},
    {"rlimit_as", 1},
    {"rlimit_cpu", 1},
    {"rlimit_data", 1},
    {"rlimit_files", 1},
    {"rlimit_rss", 1},
    {"rlimit_stack", 1},
    {"v6only", 1},
    {"deny_time", 1},
    {"umask", 1},
    {"libwrap", 1},
    {"mdns", 1},
}};

constexpr std::array<AttributeInfo, 20> kDefaultsAttributes = {{
    {"log_type", -2}, {"log_on_success", -2}, {"log_on_failure", -2},
    {"disabled", -2}, {"no_access", -2},      {"only_from", -2},
    {"instances", 1}, {"passenv", -2},        {"banner", 1},
    {"bind", 1},      {"interface", 1},       {"per_source", 1},
    {"groups", 1},    {"banner_success", 1},  {"banner_fail", 1},
    {"cps", 2},       {"enabled", -2},        {"max_load", 1},
    {"v6only", 1},    {"umask", 1},
}};

// The list attributes a service entry starts with a copy of (parse.c get_service_entry()).
constexpr std::array<std::string_view, 5> kInheritedLists = {"log_on_success", "log_on_failure",
                                                             "only_from", "no_access", "passenv"};

template <std::size_t N>
const AttributeInfo* find_info(const std::array<AttributeInfo, N>& table, std::string_view name) {
  for (const auto& info : table)
    if (info.name == name) return &info;
  return nullptr;
}

std::string canonical(const std::string& name) {
  return name == "interface" ? "bind" : name;
}

struct Defaults {
  std::map<std::string, const XinetdAttribute*> single;
  std::map<std::string, std::vector<ListOp>> lists;
  std::optional<IgnoredLine> ignored_bind;
};

// The words from the first one that starts with '#': what the author meant as a comment.
std::string comment_words(const XinetdAttribute& a) {
  std::string out;
  bool in_comment = false;
  for (const auto& v : a.values) {
    in_comment = in_comment || v.starts_with('#');
    if (in_comment) out += (out.empty() ? "" : " ") + v;
  }
  return out;
}

// nvlists.c success_log_options and failure_log_options.
constexpr std::array<std::string_view, 6> kSuccessLogFlags = {"HOST", "DURATION", "EXIT",
                                                              "PID",  "USERID",   "TRAFFIC"};
constexpr std::array<std::string_view, 3> kFailureLogFlags = {"HOST", "ATTEMPT", "USERID"};

// The first word of a log_on_success / log_on_failure line that xinetd does not know.
std::optional<std::string> unknown_log_flag(const XinetdAttribute& a) {
  if (a.name != "log_on_success" && a.name != "log_on_failure") return std::nullopt;
  for (const auto& v : a.values) {
    bool known = a.name == "log_on_success"
                     ? std::find(kSuccessLogFlags.begin(), kSuccessLogFlags.end(), v) !=
                           kSuccessLogFlags.end()
                     : std::find(kFailureLogFlags.begin(), kFailureLogFlags.end(), v) !=
                           kFailureLogFlags.end();
    if (!known) return v;
  }
  return std::nullopt;
}

// Applies one attribute line to either a service or the defaults; findings go to out.
// ignored_bind receives a bind / interface line xinetd ignores: the caller decides, since
// ignoring it opens the service on every address.
void apply(const XinetdAttribute& a, bool in_defaults, const std::string& service,
           std::map<std::string, const XinetdAttribute*>& single,
           std::map<std::string, std::vector<ListOp>>& lists,
           std::optional<IgnoredLine>& ignored_bind, std::vector<Finding>& out) {
  auto report = [&](Severity severity, std::string message) {
    out.push_back({severity, a.file, a.line, service.empty() ? "" : "service " + service,
                   std::move(message)});
  };
  const AttributeInfo* info =
      in_defaults ? find_info(kDefaultsAttributes, a.name) : find_info(kServiceAttributes, a.name);
  if (info == nullptr) {
    report(Severity::warning,
           a.text() + ": " +
               (in_defaults ? "not an attribute of the defaults entry; xinetd ignores it"
                            : "unknown attribute; xinetd ignores it"));
    return;
  }
  if (info->values == -2) {
    if (a.name == "env" && a.op == AssignOp::remove) {
      report(Severity::error, a.text() +
                                  ": '-=' cannot be used with env; xinetd disables the "
                                  "service");
      return;
    }
    if (auto bad = unknown_log_flag(a)) {
      // parse_value_list(): a word that is not a flag fails the line, which disables the
      // service; in the defaults entry xinetd stops reading and exits (parse_entry()).
      report(Severity::error,
             a.text() + ": unknown " + a.name + " flag " + *bad +
                 (bad->starts_with('#') ? " ('#' starts a comment only at the beginning of a line)"
                                        : "") +
                 (in_defaults ? "; xinetd exits on an error in its defaults entry (the services "
                                "are imported as if the line were not there)"
                              : "; xinetd disables the service"));
      return;
    }
    // In defaults, '=' accumulates like '+=' (xinetd.conf(5), "cumulative effect").
    AssignOp op = in_defaults && a.op == AssignOp::set ? AssignOp::add : a.op;
    lists[a.name].push_back({&a, op});
    return;
  }
  std::string name = canonical(a.name);
  if (auto it = single.find(name); it != single.end()) {
    report(Severity::warning, a.text() + ": already set at line " +
                                  std::to_string(it->second->line) + "; xinetd ignores this one");
    return;
  }
  if (a.op != AssignOp::set) {
    report(Severity::warning,
           a.text() + ": only '=' can be used with " + a.name + "; xinetd ignores this line");
    return;
  }
  std::string comment = comment_words(a);
  if (info->values > 0 && a.values.size() != static_cast<std::size_t>(info->values)) {
    // identify_attribute(): a wrong number of values is a warning, and the line is skipped.
    std::string count = a.name + " takes " + std::to_string(info->values) + " value" +
                        (info->values == 1 ? "" : "s") + ", not " + std::to_string(a.values.size());
    std::string why = comment.empty() ? count
                                      : "'" + comment +
                                            "' is not a comment: xinetd.conf comments take a "
                                            "whole line, so " +
                                            count;
    if (name == "bind") {
      // Reported by the mapper, which refuses to widen access without --allow-open.
      if (!ignored_bind) ignored_bind = IgnoredLine{&a, why};
      return;
    }
    report(Severity::warning, a.text() + ": " + why + "; xinetd ignores the line");
    return;
  }
  if (a.name == "server_args" && !comment.empty())
    report(Severity::warning, a.text() + ": '" + comment +
                                  "' is not a comment: xinetd.conf comments take a whole line, "
                                  "and xinetd passes these words to the server; so does the unit");
  single[name] = &a;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

const XinetdAttribute* XinetdService::get(const std::string& name) const {
  if (auto it = own.find(name); it != own.end()) return it->second;
  if (auto it = defaults.find(name); it != defaults.end()) return it->second;
  return nullptr;
}

std::string XinetdService::id() const {
  if (auto it = own.find("id"); it != own.end() && !it->second->values.empty())
    return it->second->values.front();
  return entry->name;
}

std::vector<XinetdService> resolve_xinetd_services(const XinetdConfig& config,
                                                   std::vector<Finding>& file_findings) {
  Defaults defaults;
  std::vector<XinetdService> services;
  for (const XinetdEntry& entry : config.entries) {
    if (entry.is_defaults) {
      file_findings.insert(file_findings.end(), entry.errors.begin(), entry.errors.end());
      for (const XinetdAttribute& a : entry.attributes)
        apply(a, true, "", defaults.single, defaults.lists, defaults.ignored_bind, file_findings);
      continue;
    }
    XinetdService service;
    service.entry = &entry;
    // The copy happens when the entry is read, so only defaults read before it count.
    for (std::string_view name : kInheritedLists) {
      auto it = defaults.lists.find(std::string(name));
      if (it != defaults.lists.end()) service.lists[it->first] = it->second;
    }
    for (const XinetdAttribute& a : entry.attributes)
      apply(a, false, entry.name, service.own, service.lists, service.ignored_bind,
            service.findings);
    services.push_back(std::move(service));
  }
  // Single-valued defaults apply after everything is read (confparse.c service_fill()).
  std::vector<std::string> disabled, enabled;
  const XinetdAttribute* disabled_line = nullptr;
  const XinetdAttribute* enabled_line = nullptr;
  for (const ListOp& op : defaults.lists["disabled"]) {
    disabled.insert(disabled.end(), op.attribute->values.begin(), op.attribute->values.end());
    disabled_line = op.attribute;
  }
  for (const ListOp& op : defaults.lists["enabled"]) {
    enabled.insert(enabled.end(), op.attribute->values.begin(), op.attribute->values.end());
    enabled_line = op.attribute;
  }
  for (XinetdService& service : services) {
    service.defaults = defaults.single;
    if (!service.ignored_bind) service.ignored_bind = defaults.ignored_bind;
    // log_type is a list in defaults and single-valued in a service; the defaults' one
    // applies to a service that sets none.
    if (!service.own.count("log_type") && defaults.lists.count("log_type"))
      service.lists["log_type"] = defaults.lists["log_type"];
    std::string id = service.id();
    if (enabled_line != nullptr && !contains(enabled, id)) {
      service.disabled_by_defaults = enabled_line;
    } else if (disabled_line != nullptr && contains(disabled, id)) {
      service.disabled_by_defaults = disabled_line;
    }
  }
  return services;
}

TcpWrappers find_tcp_wrappers_rules(const System& system) {
  for (const char* path : {"/etc/hosts.allow", "/etc/hosts.deny"}) {
    auto text = system.read_file(path);
    if (!text) continue;
    unsigned number = 0;
    std::size_t pos = 0;
    while (pos < text->size()) {
      std::size_t end = text->find('\n', pos);
      if (end == std::string::npos) end = text->size();
      std::string_view line(text->data() + pos, end - pos);
      pos = end + 1;
      ++number;
      std::size_t first = line.find_first_not_of(" \t\r");
      if (first != std::string_view::npos && line[first] != '#') return {path, number};
    }
  }
  return {};
}

}  // namespace usherd::importer

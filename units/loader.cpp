// Directory scanning, drop-ins, conditions and cross-unit checks; see loader.h.
#include "units/loader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>

#include "base/unique_fd.h"
#include "units/conditions.h"
#include "units/daemon_config.h"
#include "units/unit_file.h"
#include "units/unit_name.h"
#include "units/unit_parser.h"

namespace usherd::units {

Result<std::string> read_whole_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return fail_errno("Failed to open " + path);
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("Failed to read " + path);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    // Unit files are small; a huge one is a mistake (or /dev/zero), not configuration.
    if (text.size() > (16u << 20)) return fail("File too large: " + path, EFBIG);
  }
  return text;
}

namespace {

struct DirEntry {
  std::string name;
  std::string path;
  bool is_dir = false;
};

std::vector<DirEntry> list_directory(const std::string& dir, int* error) {
  std::vector<DirEntry> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    *error = errno;
    return out;
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      // A dangling symlink: keep it as a file so a /dev/null-style mask is still seen.
      out.push_back({name, path, false});
      continue;
    }
    out.push_back({name, path, S_ISDIR(st.st_mode)});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

// systemd treats an empty unit file, or one linked to /dev/null, as masked.
bool is_masked(const std::string& path) {
  char target[64];
  ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
  if (n > 0) {
    target[n] = '\0';
    if (std::string_view(target) == "/dev/null") return true;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  return S_ISCHR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0);
}

struct UnitFiles {
  std::map<std::string, std::string> main;  // name -> file (first dir wins)
  std::set<std::string> masked;
  std::map<std::string, std::vector<std::string>> dropin_dirs;  // "name" -> dirs, in order
};

UnitFiles scan(const std::vector<std::string>& dirs, DiagnosticSink& sink) {
  UnitFiles files;
  for (const std::string& dir : dirs) {
    int error = 0;
    auto entries = list_directory(dir, &error);
    if (error != 0) {
      sink.warning(dir, 0, std::string("Failed to open unit directory: ") + std::strerror(error));
      continue;
    }
    for (const DirEntry& e : entries) {
      if (e.is_dir) {
        if (e.name.size() > 2 && e.name.ends_with(".d")) {
          files.dropin_dirs[e.name.substr(0, e.name.size() - 2)].push_back(e.path);
        }
        continue;
      }
      auto name = parse_unit_name(e.name);
      if (!name || (name->suffix != "socket" && name->suffix != "service")) continue;
      if (files.main.contains(e.name) || files.masked.contains(e.name)) continue;
      if (is_masked(e.path)) {
        files.masked.insert(e.name);
        continue;
      }
      files.main.emplace(e.name, e.path);
    }
  }
  return files;
}

// Drop-in files for unit, in the order they apply.
std::vector<std::string> dropins_for(const UnitName& unit, const UnitFiles& files) {
  std::map<std::string, std::string> by_name;  // file name -> path; earlier dirs win
  std::vector<std::string> keys = {unit.name};
  if (unit.has_at && unit.template_name() != unit.name) keys.push_back(unit.template_name());
  // Visit the directories in search-path order across both keys, so priority is by directory.
  for (const std::string& key : keys) {
    auto it = files.dropin_dirs.find(key);
    if (it == files.dropin_dirs.end()) continue;
    for (const std::string& dir : it->second) {
      int error = 0;
      for (const DirEntry& e : list_directory(dir, &error)) {
        if (e.is_dir || !e.name.ends_with(".conf")) continue;
        by_name.emplace(e.name, e.path);
      }
    }
  }
  std::vector<std::string> out;
  for (auto& [name, path] : by_name) {
    if (!is_masked(path)) out.push_back(path);
  }
  return out;
}

// The main file then every drop-in, as entries; nullopt (with an error) when unreadable.
// order receives the files read, main file first.
std::optional<std::vector<Entry>> read_unit(const UnitName& unit, const std::string& path,
                                            const UnitFiles& files,
                                            const std::vector<std::string_view>& sections,
                                            std::vector<Diagnostic>& diagnostics,
                                            std::vector<std::string>& order) {
  DiagnosticSink sink(diagnostics);
  order = {path};
  auto text = read_whole_file(path);
  if (!text) {
    sink.error(path, 0, "Failed to load unit file: " + text.error().to_string());
    return std::nullopt;
  }
  auto entries = parse_unit_text(*text, path, sections, diagnostics);
  for (const std::string& dropin : dropins_for(unit, files)) {
    order.push_back(dropin);
    auto more = read_whole_file(dropin);
    if (!more) {
      sink.error(dropin, 0, "Failed to load drop-in file: " + more.error().to_string());
      return std::nullopt;
    }
    auto extra = parse_unit_text(*more, dropin, sections, diagnostics);
    entries.insert(entries.end(), std::make_move_iterator(extra.begin()),
                   std::make_move_iterator(extra.end()));
  }
  return entries;
}

// Syntax findings are made before value findings; present one unit's findings as a reader
// meets them: file by file (main file, then drop-ins, then other files), line by line, and
// the whole-unit verdicts (line 0) last.
void append_in_reading_order(std::vector<Diagnostic>& unit_diagnostics,
                             const std::vector<std::string>& order, std::vector<Diagnostic>& out) {
  auto rank = [&](const Diagnostic& d) {
    auto it = std::find(order.begin(), order.end(), d.file);
    std::size_t file = static_cast<std::size_t>(it - order.begin());
    return std::tuple(d.line == 0, file, d.line);
  };
  std::stable_sort(unit_diagnostics.begin(), unit_diagnostics.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return rank(a) < rank(b); });
  out.insert(out.end(), std::make_move_iterator(unit_diagnostics.begin()),
             std::make_move_iterator(unit_diagnostics.end()));
}

// Conditions and asserts of a parsed unit: false when it must not be used.
bool passes_conditions(const std::string& name, const std::string& path, const UnitInfo& info,
                       DiagnosticSink& sink, unsigned& failed_units) {
  ConditionResult result = check_conditions(info.conditions, sink);
  if (!result.asserts_hold) {
    sink.error(path, 0, "Assertion failed for " + name + ": " + result.reason + ". Refusing.");
    ++failed_units;
    return false;
  }
  if (!result.conditions_hold) {
    sink.notice(path, 0,
                "Condition check resulted in " + name + " being skipped: " + result.reason);
    return false;
  }
  return true;
}

}  // namespace

std::optional<Diagnostic> readiness_warning(const ServiceUnit& service) {
  if (service.declares_readiness()) return std::nullopt;
  return Diagnostic{Diagnostic::Severity::warning, service.path, 0,
                    "MaxStartups cannot see the authentication of " + service.name +
                        ": it declares no readiness (Type=notify or X-ReadyLog=); its startup "
                        "ends at exec"};
}

std::optional<Diagnostic> per_connection_commands_warning(const ServiceUnit& service) {
  std::string ignored;
  auto add = [&](const char* key, std::size_t n) {
    if (n == 0) return;
    if (!ignored.empty()) ignored += ", ";
    ignored += std::to_string(n) + " " + key + (n == 1 ? " line" : " lines");
  };
  add("ExecStartPre=", service.exec_start_pre.size());
  add("further ExecStart=", service.exec_start.empty() ? 0 : service.exec_start.size() - 1);
  add("ExecStartPost=", service.exec_start_post.size());
  if (ignored.empty()) return std::nullopt;
  return Diagnostic{Diagnostic::Severity::warning, service.path, 0,
                    service.name +
                        " runs per connection: each connection starts its first "
                        "ExecStart= only; not run: " +
                        ignored};
}

Configuration load_configuration(const std::vector<std::string>& unit_dirs,
                                 const std::optional<std::string>& config_file) {
  Configuration config;
  DiagnosticSink sink(config.diagnostics);

  if (config_file) {
    auto text = read_whole_file(*config_file);
    if (!text) {
      sink.error(*config_file, 0, "Failed to read configuration file: " + text.error().to_string());
      config.daemon_config_ok = false;
    } else {
      auto parsed = parse_daemon_config(*text, *config_file, config.diagnostics);
      config.daemon = std::move(parsed.config);
      config.daemon_config_ok = parsed.ok;
    }
  }

  UnitFiles files = scan(unit_dirs, sink);
  std::set<std::string> skipped;  // units whose conditions failed

  // Services first: sockets are checked against them.
  for (const auto& [file_name, path] : files.main) {
    auto name = parse_unit_name(file_name);
    if (!name || name->suffix != "service") continue;
    std::vector<Diagnostic> found;
    std::vector<std::string> order;
    auto entries = read_unit(*name, path, files, kServiceSections, found, order);
    std::optional<ServiceUnit> service;
    if (entries) service = parse_service_unit(*name, path, *entries, read_whole_file, found);
    append_in_reading_order(found, order, config.diagnostics);
    if (!service) {
      ++config.failed_units;
      continue;
    }
    if (!passes_conditions(service->name, path, service->info, sink, config.failed_units)) {
      skipped.insert(service->name);
      continue;
    }
    config.services.emplace(service->name, std::move(*service));
  }

  std::set<std::string> warned_readiness;
  for (const auto& [file_name, path] : files.main) {
    auto name = parse_unit_name(file_name);
    if (!name || name->suffix != "socket") continue;
    std::vector<Diagnostic> found;
    std::vector<std::string> order;
    auto entries = read_unit(*name, path, files, kSocketSections, found, order);
    std::optional<SocketUnit> socket;
    if (entries) socket = parse_socket_unit(*name, path, *entries, found);
    append_in_reading_order(found, order, config.diagnostics);
    if (!socket) {
      ++config.failed_units;
      continue;
    }
    if (!passes_conditions(socket->name, path, socket->info, sink, config.failed_units)) continue;

    auto service = config.services.find(socket->service);
    if (service == config.services.end() && !socket->accept) {
      // Service=foo@bar.service names an instance of a loaded template.
      auto wanted = parse_unit_name(socket->service);
      if (wanted && wanted->is_instance()) {
        auto tmpl = config.services.find(wanted->template_name());
        if (tmpl != config.services.end()) {
          service = config.services
                        .emplace(socket->service,
                                 instantiate(tmpl->second, wanted->instance, config.diagnostics))
                        .first;
        }
      }
    }
    if (service == config.services.end()) {
      if (skipped.contains(socket->service)) {
        sink.notice(path, 0,
                    "Skipping " + socket->name + ": its service " + socket->service +
                        " was skipped by its conditions");
        continue;
      }
      sink.error(path, 0, "Socket service " + socket->service + " not loaded, refusing.");
      ++config.failed_units;
      continue;
    }
    const ServiceUnit& svc = service->second;
    if (socket->accept && !svc.is_template) {
      sink.error(path, 0, "Socket service " + socket->service + " is not a template, refusing.");
      ++config.failed_units;
      continue;
    }
    if (!socket->accept && svc.standard_input == StdInput::socket && socket->listen.size() != 1) {
      sink.error(path, 0,
                 socket->service +
                     " has StandardInput=socket, which needs Accept=yes or exactly one "
                     "Listen*= socket. Refusing.");
      ++config.failed_units;
      continue;
    }
    if (socket->accept && warned_readiness.insert(svc.name).second) {
      if (auto warning = readiness_warning(svc)) config.diagnostics.push_back(std::move(*warning));
      if (auto warning = per_connection_commands_warning(svc))
        config.diagnostics.push_back(std::move(*warning));
    }
    config.sockets.push_back(std::move(*socket));
  }
  return config;
}

ServiceUnit instantiate(const ServiceUnit& template_unit, std::string_view instance,
                        std::vector<Diagnostic>& diagnostics) {
  auto template_name = parse_unit_name(template_unit.name);
  std::optional<UnitName> name;
  if (template_name) name = parse_unit_name(template_name->with_instance(instance));

  ServiceUnit copy = template_unit;
  copy.is_template = false;
  copy.instance = std::string(instance);
  if (template_name) copy.name = template_name->with_instance(instance);
  if (!name || !template_unit.uses_instance_specifiers || !template_unit.source) {
    if (!name) {
      DiagnosticSink(diagnostics)
          .warning(template_unit.path, 0,
                   "Invalid instance name '" + std::string(instance) + "' for " +
                       template_unit.name + ", specifiers not applied");
    }
    return copy;
  }
  auto source = template_unit.source;
  FileReader cached = [source](const std::string& path) -> Result<std::string> {
    for (const auto& [file, text] : source->environment_files) {
      if (file == path) return text;
    }
    return read_whole_file(path);
  };
  auto parsed = parse_service_unit(*name, template_unit.path, source->entries, cached, diagnostics);
  if (!parsed) return copy;
  parsed->info.conditions = template_unit.info.conditions;
  return std::move(*parsed);
}

std::string check_summary(const SocketUnit& socket) {
  std::string out = socket.name + ": listen ";
  for (std::size_t i = 0; i < socket.listen.size(); ++i) {
    const ListenAddress& a = socket.listen[i];
    if (i > 0) out += ',';
    if (a.type != SocketType::stream) out += std::string(to_string(a.type)) + ":";
    out += a.to_string();
  }
  out += socket.accept ? " accept=yes" : " accept=no";
  out += " service=" + socket.service;
  return out;
}

}  // namespace usherd::units

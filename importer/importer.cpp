// The import entry points and their output; see importer.h.
#include "importer/importer.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>

#include "base/unique_fd.h"
#include "importer/xinetd_service.h"

namespace usherd::importer {
namespace {

// Two jobs must not write the same unit: the later one fails, naming the earlier.
void refuse_duplicate_units(Report& report) {
  std::map<std::string, const Job*> owner;
  for (Job& job : report.jobs) {
    if (job.outcome != Outcome::imported) continue;
    const Job* clash = nullptr;
    for (const UnitFile& unit : job.units) {
      auto it = owner.find(unit.name);
      if (it != owner.end()) clash = it->second;
    }
    if (clash != nullptr) {
      // Units are named after the xinetd service id or the launchd Label: name what to change.
      bool launchd = job.subject.starts_with("job ");
      job.findings.push_back({Severity::error, job.file, job.line, job.subject,
                              "its units would have the same names as those of " + clash->name +
                                  " (" + clash->file + ":" + std::to_string(clash->line) +
                                  "); give one of them another " + (launchd ? "Label" : "id")});
      job.outcome = Outcome::failed;
      job.units.clear();
      continue;
    }
    for (const UnitFile& unit : job.units) owner[unit.name] = &job;
  }
}

Result<void> write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("write");
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

Report import_xinetd_config(const XinetdConfig& config, const Options& options,
                            const System& system) {
  Report report;
  report.findings = config.findings;
  auto services = resolve_xinetd_services(config, report.findings);
  TcpWrappers wrappers = find_tcp_wrappers_rules(system);
  for (const XinetdService& service : services)
    report.jobs.push_back(map_xinetd_service(service, options, system, wrappers));
  refuse_duplicate_units(report);
  return report;
}

Report import_xinetd(const std::vector<std::string>& paths, const Options& options,
                     const System& system) {
  XinetdConfig config = read_xinetd(paths, system);
  return import_xinetd_config(config, options, system);
}

Report import_launchd(const std::vector<std::string>& paths, const Options& options,
                      const System& system) {
  Report report;
  for (const std::string& path : paths) {
    auto text = system.read_file(path);
    if (!text) {
      report.findings.push_back(
          {Severity::error, path, 0, "", "cannot read it: " + text.error().to_string()});
      continue;
    }
    report.jobs.push_back(import_launchd_text(*text, path, options, system));
  }
  refuse_duplicate_units(report);
  return report;
}

Result<std::vector<std::string>> write_units(const Report& report, const std::string& dir) {
  std::vector<std::pair<std::string, const UnitFile*>> files;
  for (const Job& job : report.jobs)
    for (const UnitFile& unit : job.units) files.emplace_back(dir + "/" + unit.name, &unit);
  for (const auto& [path, unit] : files) {
    if (::access(path.c_str(), F_OK) == 0)
      return fail(path + " already exists; remove it first (an import never overwrites a unit)");
  }
  std::vector<std::string> written;
  for (const auto& [path, unit] : files) {
    // O_EXCL: a file that appeared since the check is not overwritten either.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return fail_errno("cannot create " + path);
    if (auto ok = write_all(fd.get(), unit->text); !ok)
      return fail(path + ": " + ok.error().to_string(), ok.error().code);
    written.push_back(path);
  }
  return written;
}

std::string print_units(const Report& report) {
  std::string out;
  for (const Job& job : report.jobs) {
    for (const UnitFile& unit : job.units) {
      if (!out.empty()) out += "\n";
      out += "### " + unit.name + "\n" + unit.text;
    }
  }
  return out;
}

}  // namespace usherd::importer

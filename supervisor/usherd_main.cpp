// usherd: the socket-activation super-server. Runs in the foreground; `--check` validates the
// configuration and exits.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "activation/credentials.h"
#include "activation/ready_log.h"
#include "supervisor/daemon.h"
#include "supervisor/logging.h"
#include "supervisor/proc_title.h"
#include "units/loader.h"

namespace {

using namespace usherd;

// usherd --check: everything a start would load, reported as file:line diagnostics, plus the
// checks that need the system (users, groups, readiness patterns). Exit 0 only when every
// unit would load (and, with --strict, nothing was worth a warning).
int check(const supervisor::Options& options, bool strict) {
  units::Configuration config = units::load_configuration(options.unit_dirs, options.config_file);
  unsigned errors = 0, warnings = 0;
  for (const auto& d : config.diagnostics) {
    std::cout << d.to_string() << "\n";
    if (d.severity == units::Diagnostic::Severity::error) ++errors;
    if (d.severity == units::Diagnostic::Severity::warning) ++warnings;
  }
  if (!config.daemon_config_ok) ++errors;
  for (const auto& socket : config.sockets) {
    auto it = config.services.find(socket.service);
    if (it == config.services.end()) {
      std::cout << socket.path << ": service " << socket.service << " not found\n";
      ++errors;
      continue;
    }
    const units::ServiceUnit& service = it->second;
    if (service.user || service.group) {
      auto creds = activation::resolve_credentials(
          service.user.value_or(""), service.group.value_or(""), service.supplementary_groups);
      if (!creds) {
        std::cout << service.path << ": " << creds.error().to_string() << "\n";
        ++errors;
        continue;
      }
    }
    if (service.ready_log) {
      auto matcher = activation::ReadyLogMatcher::compile(*service.ready_log);
      if (!matcher) {
        std::cout << service.path << ": X-ReadyLog=: " << matcher.error().to_string() << "\n";
        ++errors;
        continue;
      }
    }
    std::cout << units::check_summary(socket) << "\n";
  }
  errors += config.failed_units;
  std::cout << config.sockets.size() << " sockets, " << config.services.size() << " services, "
            << errors << " errors, " << warnings << " warnings\n";
  if (errors > 0) return 1;
  if (strict && warnings > 0) return 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  supervisor::Options options;
  bool check_only = false, strict = false;
  std::string log_level = "info";
  CLI::App app{"usherd: socket-activation super-server"};
  app.add_option("--units", options.unit_dirs, "unit directory (repeatable; earlier wins)");
  app.add_option("--config", options.config_file, "usherd.conf");
  app.add_option("--runtime-dir", options.runtime_dir,
                 "runtime directory (control, notify, state)");
  app.add_option("--log-level", log_level, "trace, debug, info, warning, error");
  app.add_flag("--check", check_only, "validate the configuration and exit");
  app.add_flag("--strict", strict, "with --check: warnings fail too");
  app.set_version_flag("--version", "usherd 0.1.0");
  CLI11_PARSE(app, argc, argv);
  if (options.unit_dirs.empty()) options.unit_dirs.push_back("/etc/usherd/units");
  if (!options.config_file && ::access("/etc/usherd/usherd.conf", F_OK) == 0)
    options.config_file = "/etc/usherd/usherd.conf";

  if (check_only) return check(options, strict);

  supervisor::ProcTitle::init(argc, argv);
  // A peer that goes away must cost a write its EPIPE, not usherd its life: a control client
  // that disconnects before its answer, a log reader that dies. Every spawned instance gets
  // its dispositions reset, so nothing inherits this.
  std::signal(SIGPIPE, SIG_IGN);
  if (!supervisor::setup_logging(log_level)) {
    std::fprintf(stderr, "usherd: unknown log level '%s'\n", log_level.c_str());
    return 2;
  }
  supervisor::Daemon daemon(std::move(options));
  return daemon.run();
}

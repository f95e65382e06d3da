// usherctl: talks to a running usherd over RUNTIME/control, sends readiness notifications for
// instances (`usherctl notify --ready`, a drop-in for systemd-notify), and writes unit files
// from xinetd or launchd configurations (`usherctl import`).
// Exit codes: 0 ok, 1 refused or failed (import: something could not be imported; what was
// importable is still written or printed), 2 usage.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>

#include "activation/notify.h"
#include "base/escape.h"
#include "importer/importer.h"
#include "supervisor/control_client.h"

namespace {

using namespace usherd;

int call(const std::string& runtime_dir, const std::string& command, boost::json::object extra,
         const std::function<void(const boost::json::value&)>& print) {
  boost::json::object request = std::move(extra);
  request["version"] = 1;
  request["command"] = command;
  auto result = supervisor::control_call(runtime_dir, request);
  if (!result) {
    std::fprintf(stderr, "usherctl: %s\n", result.error().message.c_str());
    return 1;
  }
  print(*result);
  return 0;
}

void print_list(const boost::json::value& v) {
  const auto& list = v.as_object().at("instances").as_array();
  std::cout << fmt::format("{:<58} {:>7} {:<22} {:<9} {:>8} {}\n", "ID", "PID", "PEER", "STATE",
                           "AGE", "READY");
  for (const auto& item : list) {
    const auto& o = item.as_object();
    auto str = [&](const char* k) {
      const auto& x = o.at(k);
      if (!x.is_string()) return std::string("-");
      // A peer's address is escaped by the daemon already; anything that still is not one
      // printable token is escaped here, so no daemon can drive the terminal or split a row.
      std::string_view text(x.as_string());
      bool token =
          std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
      return token ? std::string(text) : escape_untrusted(text, 256, true);
    };
    std::cout << fmt::format("{:<58} {:>7} {:<22} {:<9} {:>7.1f}s {}\n", str("id"),
                             o.at("pid").to_number<long>(), str("peer"), str("state"),
                             o.at("age_s").to_number<double>(), str("ready_via"));
  }
  std::cout << list.size() << " instances\n";
}

// usherctl import: findings on stderr (one line each), units on stdout or into --to DIR.
int run_import(const std::string& kind, const std::vector<std::string>& files,
               const std::string& to, const importer::Options& options) {
  importer::Report report = kind == "xinetd" ? importer::import_xinetd(files, options)
                                             : importer::import_launchd(files, options);
  for (const auto& finding : report.all_findings())
    std::fprintf(stderr, "%s\n", finding.to_string().c_str());
  unsigned imported = 0, disabled = 0, failed = 0;
  for (const auto& job : report.jobs) {
    imported += job.outcome == importer::Outcome::imported;
    disabled += job.outcome == importer::Outcome::disabled;
    failed += job.outcome == importer::Outcome::failed;
  }
  int rc = report.ok() ? 0 : 1;
  if (to.empty()) {
    std::cout << importer::print_units(report);
  } else {
    auto written = importer::write_units(report, to);
    if (!written) {
      std::fprintf(stderr, "usherctl import: %s\n", written.error().to_string().c_str());
      return 1;
    }
    for (const auto& path : *written) std::cout << "wrote " << path << "\n";
  }
  // Errors about a file rather than a service (unreadable, a stray line) fail the import
  // too; the summary counts them, so it never says "0 not importable" beside exit status 1.
  unsigned file_errors = static_cast<unsigned>(std::count_if(
      report.findings.begin(), report.findings.end(),
      [](const importer::Finding& f) { return f.severity == importer::Severity::error; }));
  if (file_errors > 0)
    std::fprintf(stderr,
                 "usherctl import: %u imported, %u disabled (skipped), %u not importable, "
                 "%u file errors\n",
                 imported, disabled, failed, file_errors);
  else
    std::fprintf(stderr, "usherctl import: %u imported, %u disabled (skipped), %u not importable\n",
                 imported, disabled, failed);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"usherctl: control a running usherd"};
  app.require_subcommand(1);
  std::string runtime_dir = "/run/usherd";
  app.add_option("--runtime-dir", runtime_dir, "usherd's runtime directory");

  bool json = false;
  auto* status = app.add_subcommand("status", "startup budget, sockets and counters");
  status->add_flag("--json", json, "machine-readable");
  auto* list = app.add_subcommand("list", "live instances");
  list->add_flag("--json", json, "machine-readable");
  app.add_subcommand("metrics", "Prometheus text exposition");
  app.add_subcommand("reload", "reload the configuration (as SIGHUP)");
  std::string stop_id;
  auto* stop = app.add_subcommand("stop", "stop one instance");
  stop->add_option("ID", stop_id, "instance id (see list)")->required();

  bool ready = false, stopping = false;
  std::string notify_status, notify_socket;
  std::optional<pid_t> notify_pid;
  bool own_pid = false;
  auto* notify = app.add_subcommand("notify", "send a readiness notification (as systemd-notify)");
  notify->add_flag("--ready", ready, "READY=1");
  notify->add_flag("--stopping", stopping, "STOPPING=1");
  notify->add_option("--status", notify_status, "STATUS=TEXT");
  notify->add_option("--socket", notify_socket,
                     "notify socket path (default: $NOTIFY_SOCKET, else RUNTIME/notify)");
  notify->add_option("--pid", notify_pid,
                     "send as this pid (default: the parent, as systemd-notify)");
  notify->add_flag("--own-pid", own_pid, "send as usherctl's own pid");

  std::string import_kind, import_to;
  std::vector<std::string> import_files;
  importer::Options import_options;
  auto* import = app.add_subcommand("import", "unit files from xinetd or launchd configurations");
  import->add_option("KIND", import_kind, "xinetd or launchd")
      ->required()
      ->check(CLI::IsMember({"xinetd", "launchd"}));
  import
      ->add_option("FILE", import_files,
                   "xinetd.conf files (or directories, read as includedir), or launchd plists")
      ->required();
  import->add_option("--to", import_to, "write the units into this directory (default: print)");
  import->add_flag("--allow-open", import_options.allow_open,
                   "drop access rules that cannot be expressed instead of failing the service");
  import->add_flag("--include-disabled", import_options.include_disabled,
                   "import disabled services too");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*status) {
    if (json)
      return call(runtime_dir, "status", {},
                  [](const auto& v) { std::cout << boost::json::serialize(v) << "\n"; });
    return call(runtime_dir, "status-text", {},
                [](const auto& v) { std::cout << v.as_string().c_str(); });
  }
  if (*list) {
    if (json)
      return call(runtime_dir, "list", {},
                  [](const auto& v) { std::cout << boost::json::serialize(v) << "\n"; });
    return call(runtime_dir, "list", {}, print_list);
  }
  if (app.got_subcommand("metrics"))
    return call(runtime_dir, "metrics", {},
                [](const auto& v) { std::cout << v.as_string().c_str(); });
  if (app.got_subcommand("reload"))
    return call(runtime_dir, "reload", {},
                [](const auto& v) { std::cout << v.as_string().c_str() << "\n"; });
  if (*stop) {
    boost::json::object args;
    args["id"] = stop_id;
    return call(runtime_dir, "stop", args,
                [](const auto& v) { std::cout << v.as_string().c_str() << "\n"; });
  }
  if (*import) return run_import(import_kind, import_files, import_to, import_options);
  if (*notify) {
    // Run from pam_exec (the recommended OpenSSH setup), usherctl is called for every PAM
    // session event; only open_session, which follows a successful authentication, means
    // the instance is ready.
    if (const char* pam_type = std::getenv("PAM_TYPE");
        pam_type && std::string_view(pam_type) != "open_session")
      return 0;
    std::string payload;
    if (ready) payload += "READY=1\n";
    if (stopping) payload += "STOPPING=1\n";
    if (!notify_status.empty()) payload += "STATUS=" + notify_status + "\n";
    if (payload.empty()) {
      std::fprintf(stderr, "usherctl notify: nothing to send (--ready, --stopping, --status)\n");
      return 2;
    }
    std::string path = notify_socket;
    if (path.empty() && std::getenv("NOTIFY_SOCKET")) path = std::getenv("NOTIFY_SOCKET");
    if (path.empty()) path = runtime_dir + "/notify";
    // Like systemd-notify: the credentials name our parent (the service process that ran us),
    // so the datagram is attributed even though usherctl itself exits at once.
    std::optional<pid_t> as =
        own_pid ? std::nullopt : std::optional<pid_t>(notify_pid.value_or(getppid()));
    auto sent = activation::send_notification(path, payload, as);
    if (!sent) {
      std::fprintf(stderr, "usherctl notify: %s\n", sent.error().to_string().c_str());
      return 1;
    }
    return 0;
  }
  return 2;
}

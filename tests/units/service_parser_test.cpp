// [Service] keys, environment assembly and the checks that refuse a service unit.
#include <sys/resource.h>

#include <csignal>
#include <map>

#include "tests/catch.h"

#include "units/unit_parser.h"

using namespace usherd::units;
using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

namespace {

struct Parsed {
  std::optional<ServiceUnit> service;
  std::vector<Diagnostic> diagnostics;
  std::string messages() const {
    std::string out;
    for (const auto& d : diagnostics) out += d.to_string() + "\n";
    return out;
  }
};

FileReader files(std::map<std::string, std::string> contents) {
  return [contents](const std::string& path) -> usherd::Result<std::string> {
    auto it = contents.find(path);
    if (it == contents.end()) return usherd::fail("Failed to open " + path, ENOENT);
    return it->second;
  };
}

Parsed parse(std::string_view name, std::string_view text, const FileReader& read = files({})) {
  Parsed p;
  auto unit = parse_unit_name(name);
  REQUIRE(unit);
  p.service = parse_service_text(*unit, std::string(name), text, read, p.diagnostics);
  return p;
}

}  // namespace

TEST_CASE("a service gets systemd's defaults", "[units][service]") {
  auto p = parse("a.service", "[Service]\nExecStart=/bin/true\n");
  REQUIRE(p.service);
  CHECK(p.diagnostics.empty());
  const ServiceUnit& s = *p.service;
  CHECK(s.type == ServiceType::simple);
  CHECK(s.notify_access == NotifyAccess::none);
  CHECK(s.kill_mode == KillMode::control_group);
  CHECK(s.kill_signal == SIGTERM);
  CHECK(s.timeout_stop == Duration(90s));
  CHECK(s.restart == RestartPolicy::no);
  CHECK(s.restart_sec == Duration(100ms));
  CHECK(s.umask == 0022);
  CHECK(s.runtime_directory_mode == 0755);
  CHECK(s.runtime_directory_preserve == RuntimeDirectoryPreserve::no);
  CHECK(s.standard_input == StdInput::null);
  CHECK(s.effective_standard_output() == StdOutput::journal);
  CHECK(s.effective_standard_error() == StdOutput::journal);
  CHECK_FALSE(s.declares_readiness());
  CHECK_FALSE(s.is_template);
}

TEST_CASE("every service key reaches its field", "[units][service]") {
  auto p = parse("a.service",
                 "[Service]\nType=notify\nExecStartPre=/usr/sbin/sshd -t\n"
                 "ExecStart=/usr/sbin/sshd -D $SSHD_OPTS\nExecStartPost=/bin/true\n"
                 "ExecReload=/usr/sbin/sshd -t\nExecReload=/bin/kill -HUP $MAINPID\n"
                 "ExecStop=/bin/false\nUser=sshd\nGroup=nogroup\nSupplementaryGroups=a b\n"
                 "SupplementaryGroups=c\nUnsetEnvironment=LANG X=1\n"
                 "WorkingDirectory=-~\nRootDirectory=/srv/root\nUMask=0077\nNice=-5\n"
                 "LimitNOFILE=1024:524288\nLimitCORE=infinity\nLimitFSIZE=1M:2G\n"
                 "LimitCPU=2min\nLimitNICE=-5\nLimitRTTIME=500\n"
                 "StandardInput=socket\nStandardOutput=null\nStandardError=journal\n"
                 "NotifyAccess=all\nKillMode=process\nKillSignal=SIGINT\nTimeoutStopSec=5s\n"
                 "Restart=on-failure\nRestartSec=1\nRestartPreventExitStatus=255 SIGPIPE 1\n"
                 "RuntimeDirectory=sshd usherd/x\nRuntimeDirectoryMode=0700\n"
                 "RuntimeDirectoryPreserve=restart\nNoNewPrivileges=yes\n"
                 "X-ReadyLog=^Accepted \n");
  INFO(p.messages());
  REQUIRE(p.service);
  CHECK(p.diagnostics.empty());
  const ServiceUnit& s = *p.service;
  CHECK(s.type == ServiceType::notify);
  REQUIRE(s.exec_start.size() == 1);
  CHECK(s.exec_start[0].argv == Strings{"/usr/sbin/sshd", "-D", "$SSHD_OPTS"});
  CHECK(s.exec_start_pre.size() == 1);
  CHECK(s.exec_start_post.size() == 1);
  REQUIRE(s.exec_reload.size() == 2);
  CHECK(s.exec_reload[1].argv == Strings{"/bin/kill", "-HUP", "$MAINPID"});
  CHECK(s.exec_stop.size() == 1);
  CHECK(s.user == "sshd");
  CHECK(s.group == "nogroup");
  CHECK(s.supplementary_groups == Strings{"a", "b", "c"});
  CHECK(s.unset_environment == Strings{"LANG", "X=1"});
  CHECK(s.working_directory == "~");
  CHECK(s.working_directory_missing_ok);
  CHECK(s.root_directory == "/srv/root");
  CHECK(s.umask == 0077);
  CHECK(s.nice == -5);
  auto limit = [&](int resource) {
    for (const auto& l : s.limits) {
      if (l.resource == resource) return std::optional<ResourceLimit>(l);
    }
    return std::optional<ResourceLimit>();
  };
  REQUIRE(limit(RLIMIT_NOFILE));
  CHECK(limit(RLIMIT_NOFILE)->soft == 1024);
  CHECK(limit(RLIMIT_NOFILE)->hard == 524288);
  CHECK(limit(RLIMIT_CORE)->soft == RLIM_INFINITY);
  CHECK(limit(RLIMIT_FSIZE)->soft == 1u << 20);
  CHECK(limit(RLIMIT_FSIZE)->hard == 2ull << 30);
  CHECK(limit(RLIMIT_CPU)->soft == 120);
  CHECK(limit(RLIMIT_NICE)->soft == 25);
  CHECK(limit(RLIMIT_RTTIME)->soft == 500);
  CHECK(s.standard_input == StdInput::socket);
  CHECK(s.effective_standard_output() == StdOutput::null);
  CHECK(s.effective_standard_error() == StdOutput::journal);
  CHECK(s.notify_access == NotifyAccess::all);
  CHECK(s.kill_mode == KillMode::process);
  CHECK(s.kill_signal == SIGINT);
  CHECK(s.timeout_stop == Duration(5s));
  CHECK(s.restart == RestartPolicy::on_failure);
  CHECK(s.restart_sec == Duration(1s));
  CHECK(s.restart_prevent_exit_status == std::vector<int>{255, 1});
  CHECK(s.restart_prevent_signals == std::vector<int>{SIGPIPE});
  CHECK(s.runtime_directory == Strings{"sshd", "usherd/x"});
  CHECK(s.runtime_directory_mode == 0700);
  CHECK(s.runtime_directory_preserve == RuntimeDirectoryPreserve::restart);
  CHECK(s.no_new_privileges);
  CHECK(s.ready_log == "^Accepted");
  CHECK(s.declares_readiness());
}

TEST_CASE("Type=notify implies NotifyAccess=main", "[units][service]") {
  auto p = parse("a.service", "[Service]\nType=notify\nExecStart=/bin/true\n");
  REQUIRE(p.service);
  CHECK(p.service->notify_access == NotifyAccess::main);
  CHECK(p.service->declares_readiness());
}

TEST_CASE("stdout and stderr inherit the socket when stdin is the socket", "[units][service]") {
  auto p = parse("a@.service", "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n");
  REQUIRE(p.service);
  CHECK(p.service->effective_standard_output() == StdOutput::socket);
  CHECK(p.service->effective_standard_error() == StdOutput::socket);
}

TEST_CASE("a later Limit for one resource replaces the earlier one", "[units][service]") {
  auto p =
      parse("a.service", "[Service]\nExecStart=/bin/true\nLimitNOFILE=10\nLimitNOFILE=20:30\n");
  REQUIRE(p.service);
  REQUIRE(p.service->limits.size() == 1);
  CHECK(p.service->limits[0].soft == 20);
  CHECK(p.service->limits[0].hard == 30);
}

TEST_CASE("bad limits, signals and modes are warnings", "[units][service]") {
  auto p = parse("a.service",
                 "[Service]\nExecStart=/bin/true\nLimitNOFILE=30:20\nKillSignal=SIGNOPE\n"
                 "UMask=0999\nType=forking\nStandardOutput=file:/x\n");
  REQUIRE(p.service);
  CHECK(p.service->limits.empty());
  CHECK(p.service->kill_signal == SIGTERM);
  CHECK(p.service->type == ServiceType::simple);
  CHECK(p.messages() ==
        "a.service:3: Failed to parse LimitNOFILE= value, ignoring: 30:20 (soft limit above hard "
        "limit)\n"
        "a.service:4: Failed to parse KillSignal= value, ignoring: SIGNOPE (unknown signal name)\n"
        "a.service:5: Failed to parse UMask= value, ignoring: 0999 (expected an octal mask up to "
        "0777)\n"
        "a.service:6: Type=forking is not supported by usherd, ignoring.\n"
        "a.service:7: StandardOutput=file:/x is not supported by usherd, ignoring.\n");
}

TEST_CASE("environment files override Environment= and later assignments win", "[units][service]") {
  auto read =
      files({{"/etc/default/ssh", "SSHD_OPTS=-4\nB=from-file\n"}, {"/etc/second", "B=second\n"}});
  auto p = parse("a.service",
                 "[Service]\nExecStart=/bin/true\nEnvironment=B=inline \"C=with space\"\n"
                 "EnvironmentFile=-/etc/default/ssh\nEnvironmentFile=-/etc/missing\n"
                 "EnvironmentFile=/etc/second\nEnvironment=D=\\x41\n",
                 read);
  INFO(p.messages());
  REQUIRE(p.service);
  CHECK(p.diagnostics.empty());
  CHECK(p.service->environment == Strings{"B=second", "C=with space", "D=A", "SSHD_OPTS=-4"});
  CHECK(p.service->environment_files ==
        Strings{"-/etc/default/ssh", "-/etc/missing", "/etc/second"});
}

TEST_CASE("an empty Environment= resets earlier assignments", "[units][service]") {
  auto p =
      parse("a.service",
            "[Service]\nExecStart=/bin/true\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n");
  REQUIRE(p.service);
  CHECK(p.service->environment == Strings{"B=2"});
}

TEST_CASE("a required environment file that cannot be read refuses the unit", "[units][service]") {
  auto p = parse("a.service", "[Service]\nExecStart=/bin/true\nEnvironmentFile=/etc/none\n");
  CHECK_FALSE(p.service);
  CHECK(p.messages() ==
        "a.service:3: Failed to load environment file /etc/none: Failed to open /etc/none: No such "
        "file or directory. Refusing.\n");
}

TEST_CASE("an empty ExecStart= resets the list, as a drop-in uses it", "[units][service]") {
  auto p = parse("a.service", "[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n");
  REQUIRE(p.service);
  REQUIRE(p.service->exec_start.size() == 1);
  CHECK(p.service->exec_start[0].path == "/bin/b");
}

TEST_CASE("services without a usable ExecStart are refused as systemd refuses them",
          "[units][service]") {
  CHECK_FALSE(parse("a.service", "[Service]\nUser=x\n").service);
  CHECK_FALSE(parse("a.service", "[Service]\nExecStop=/bin/x\n").service);
  CHECK_FALSE(parse("a.service", "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n").service);
  CHECK(parse("a.service", "[Service]\nType=oneshot\nExecStop=/bin/x\n").service);
  CHECK(
      parse("a.service", "[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b\n").service);
  CHECK_FALSE(
      parse("a.service", "[Service]\nType=oneshot\nExecStart=/bin/a\nRestart=always\n").service);
}

TEST_CASE("sandboxing keys warn that they are not enforced", "[units][service]") {
  auto p =
      parse("a.service", "[Service]\nExecStart=/bin/true\nProtectSystem=full\nPrivateTmp=yes\n");
  REQUIRE(p.service);
  CHECK(p.messages() ==
        "a.service:3: ProtectSystem= is not enforced by usherd, ignoring.\n"
        "a.service:4: PrivateTmp= is not enforced by usherd, ignoring.\n");
}

TEST_CASE("ordering keys and Install are accepted silently", "[units][service]") {
  auto p = parse("a.service",
                 "[Unit]\nAfter=network.target\nWants=x.service\nRequires=y\nPartOf=z\n"
                 "Conflicts=q\nDocumentation=man:a(8) https://x\n[Service]\nExecStart=/bin/true\n"
                 "[Install]\nWantedBy=multi-user.target\nAlias=b.service\n");
  REQUIRE(p.service);
  CHECK(p.diagnostics.empty());
  CHECK(p.service->info.documentation == Strings{"man:a(8)", "https://x"});
}

TEST_CASE("conditions are parsed with their negation and trigger marks", "[units][service]") {
  auto p = parse("a.service",
                 "[Unit]\nConditionPathExists=!/etc/x\nConditionPathExists=|/a\n"
                 "AssertPathIsDirectory=/b\n[Service]\nExecStart=/bin/true\n");
  REQUIRE(p.service);
  const auto& c = p.service->info.conditions;
  REQUIRE(c.size() == 3);
  CHECK(c[0].type == "PathExists");
  CHECK(c[0].negate);
  CHECK(c[0].parameter == "/etc/x");
  CHECK(c[1].trigger);
  CHECK_FALSE(c[1].negate);
  CHECK(c[2].is_assert);
  CHECK(c[2].type == "PathIsDirectory");
}

TEST_CASE("a template records whether it uses instance specifiers", "[units][service][template]") {
  auto plain = parse("a@.service", "[Service]\nExecStart=/bin/cat %t/%p\n");
  REQUIRE(plain.service);
  CHECK(plain.service->is_template);
  CHECK_FALSE(plain.service->uses_instance_specifiers);
  REQUIRE(plain.service->source);
  CHECK(plain.service->exec_start[0].argv == Strings{"/bin/cat", "/run/a"});

  auto inst = parse("a@.service", "[Service]\nExecStart=/bin/echo %i\n");
  REQUIRE(inst.service);
  CHECK(inst.service->uses_instance_specifiers);
}

TEST_CASE("a User= or Group= that names no valid user refuses the service, never runs it as root",
          "[units][service]") {
  auto [key, value] = GENERATE(table<std::string, std::string>({
      {"User", "0day bad"},
      {"Group", "-x"},
      {"User", "%i"},  // a per-connection template: %i is the connection, never a user
  }));
  auto p = parse("a@.service", "[Service]\nExecStart=/bin/true\n" + key + "=" + value + "\n");
  CHECK_FALSE(p.service);
  CHECK(p.messages().find("Invalid user/group name or numeric ID in " + key + "=") !=
        std::string::npos);
  CHECK(p.messages().find("Refusing.") != std::string::npos);
}

TEST_CASE("services that run sshd get OpenSSH's exit outcomes, others the legacy ones",
          "[units][service][outcomes]") {
  using usherd::policy::ExitStatusOutcomes;
  auto [exec, outcomes] = GENERATE(table<std::string, ExitStatusOutcomes>({
      {"-/usr/sbin/sshd -i -e", ExitStatusOutcomes::openssh},
      {"/usr/lib/openssh/sshd-session -i", ExitStatusOutcomes::openssh},
      {"@/usr/local/bin/wrapper sshd -i", ExitStatusOutcomes::openssh},
      {"sshd -i", ExitStatusOutcomes::openssh},
      {"/usr/sbin/dropbear -i", ExitStatusOutcomes::legacy},
      {"/usr/bin/git daemon --inetd", ExitStatusOutcomes::legacy},
      {"/usr/sbin/sshd-keygen-wrapper", ExitStatusOutcomes::legacy},
  }));
  auto p = parse("s@.service", "[Service]\nExecStart=" + exec + "\nStandardInput=socket\n");
  REQUIRE(p.service);
  INFO(exec);
  CHECK(p.service->effective_exit_status_outcomes() == outcomes);
  CHECK_FALSE(p.service->exit_status_outcomes);
}

TEST_CASE("X-ExitStatusOutcomes= chooses the table, empty restores the default",
          "[units][service][outcomes]") {
  using usherd::policy::ExitStatusOutcomes;
  auto legacy =
      parse("s@.service", "[Service]\nExecStart=/usr/sbin/sshd -i\nX-ExitStatusOutcomes=legacy\n");
  REQUIRE(legacy.service);
  CHECK(legacy.service->effective_exit_status_outcomes() == ExitStatusOutcomes::legacy);
  CHECK(legacy.messages().empty());
  auto openssh = parse(
      "d@.service", "[Service]\nExecStart=/usr/sbin/dropbear -i\nX-ExitStatusOutcomes=openssh\n");
  REQUIRE(openssh.service);
  CHECK(openssh.service->effective_exit_status_outcomes() == ExitStatusOutcomes::openssh);
  auto reset = parse("s@.service",
                     "[Service]\nExecStart=/usr/sbin/sshd -i\nX-ExitStatusOutcomes=legacy\n"
                     "X-ExitStatusOutcomes=\n");
  REQUIRE(reset.service);
  CHECK_FALSE(reset.service->exit_status_outcomes);
  CHECK(reset.service->effective_exit_status_outcomes() == ExitStatusOutcomes::openssh);
  auto bad =
      parse("s@.service", "[Service]\nExecStart=/usr/sbin/sshd -i\nX-ExitStatusOutcomes=sshd\n");
  REQUIRE(bad.service);
  CHECK(bad.messages() ==
        "s@.service:3: Failed to parse X-ExitStatusOutcomes= value, ignoring: sshd (expected "
        "openssh or legacy)\n");
  CHECK(bad.service->effective_exit_status_outcomes() == ExitStatusOutcomes::openssh);
}

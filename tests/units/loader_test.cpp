// Loading directories: search-path precedence, drop-ins, masking, conditions, cross-unit
// checks, templates and instantiation, and Debian's own unit files.
#include "units/loader.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/catch.h"

using namespace usherd::units;
using Strings = std::vector<std::string>;
namespace fs = std::filesystem;

namespace {

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "usherd-units-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string write(const std::string& relative, std::string_view text) const {
    fs::path p = path_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  fs::path path_;
};

std::string messages(const Configuration& c) {
  std::string out;
  for (const auto& d : c.diagnostics)
    out += std::string(to_string(d.severity)) + ": " + d.to_string() + "\n";
  return out;
}

unsigned count(const Configuration& c, Diagnostic::Severity severity) {
  unsigned n = 0;
  for (const auto& d : c.diagnostics) n += d.severity == severity;
  return n;
}

const SocketUnit* find_socket(const Configuration& c, std::string_view name) {
  for (const auto& s : c.sockets) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("the classic per-connection ssh pair loads with only the readiness warning",
          "[units][loader][real]") {
  auto c = load_configuration({std::string(USHERD_TEST_DATA_DIR) + "/classic"}, std::nullopt);
  INFO(messages(c));
  CHECK(c.failed_units == 0);
  CHECK(count(c, Diagnostic::Severity::error) == 0);
  REQUIRE(c.sockets.size() == 1);
  const SocketUnit& s = c.sockets[0];
  CHECK(s.accept);
  CHECK(s.service == "ssh@.service");
  CHECK(check_summary(s) == "ssh.socket: listen *:22 accept=yes service=ssh@.service");
  const ServiceUnit& svc = c.services.at("ssh@.service");
  CHECK(svc.is_template);
  CHECK(svc.exec_start[0].ignore_failure);
  CHECK(svc.exec_start[0].argv == Strings{"/usr/sbin/sshd", "-i", "$SSHD_OPTS"});
  CHECK(svc.runtime_directory_preserve == RuntimeDirectoryPreserve::yes);
  REQUIRE(count(c, Diagnostic::Severity::warning) == 1);
  CHECK(c.diagnostics.back().to_string() ==
        std::string(USHERD_TEST_DATA_DIR) +
            "/classic/ssh@.service: MaxStartups cannot see the authentication of ssh@.service: it "
            "declares no readiness (Type=notify or X-ReadyLog=); its startup ends at exec");
}

TEST_CASE("a per-connection service's commands beyond its first ExecStart= are named as not run",
          "[units][loader]") {
  TempDir dir;
  std::string path = dir.write("echo@.service",
                               "[Service]\nType=oneshot\nExecStartPre=/bin/true\n"
                               "ExecStart=/bin/echo one\nExecStart=/bin/echo two\n"
                               "ExecStart=/bin/echo three\nExecStartPost=/bin/true\n"
                               "StandardInput=socket\n");
  dir.write("echo.socket", "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n");
  dir.write("plain@.service", "[Service]\nExecStart=/bin/echo plain\nStandardInput=socket\n");
  dir.write("plain.socket",
            "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nService=plain@.service\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  INFO(messages(c));
  CHECK(c.failed_units == 0);
  CHECK(c.sockets.size() == 2);
  std::vector<std::string> found;
  for (const auto& d : c.diagnostics)
    if (d.message.find("runs per connection") != std::string::npos) found.push_back(d.to_string());
  CHECK(found == std::vector<std::string>{
                     path + ": echo@.service runs per connection: each connection starts its first "
                            "ExecStart= only; not run: 1 ExecStartPre= line, 2 further ExecStart= "
                            "lines, 1 ExecStartPost= line"});
}

TEST_CASE("Debian 12's ssh.socket and ssh.service load without errors", "[units][loader][real]") {
  auto c = load_configuration({std::string(USHERD_TEST_DATA_DIR) + "/debian12"}, std::nullopt);
  INFO(messages(c));
  CHECK(c.failed_units == 0);
  CHECK(count(c, Diagnostic::Severity::error) == 0);
  for (const auto& d : c.diagnostics) {
    if (d.severity == Diagnostic::Severity::warning)
      CHECK(d.message.find("not enforced") != std::string::npos);
  }
  const SocketUnit* ssh = find_socket(c, "ssh.socket");
  REQUIRE(ssh);
  CHECK_FALSE(ssh->accept);
  CHECK(ssh->service == "ssh.service");
  const ServiceUnit& svc = c.services.at("ssh.service");
  CHECK(svc.type == ServiceType::notify);
  CHECK(svc.kill_mode == KillMode::process);
  CHECK(svc.exec_start_pre.size() == 1);
  CHECK(svc.exec_reload.size() == 2);
  CHECK(svc.restart_prevent_exit_status == std::vector<int>{255});
  CHECK(svc.runtime_directory == Strings{"sshd"});
}

TEST_CASE("Debian 12's rsync.service parses with only not-enforced warnings",
          "[units][loader][real]") {
  // Its ConditionPathExists=/etc/rsyncd.conf decides whether the loader keeps it; the parse
  // itself must be clean either way.
  auto c = load_configuration({std::string(USHERD_TEST_DATA_DIR) + "/debian12"}, std::nullopt);
  unsigned not_enforced = 0;
  for (const auto& d : c.diagnostics) {
    if (d.file.ends_with("rsync.service") && d.severity == Diagnostic::Severity::warning) {
      CHECK(d.message.find("not enforced") != std::string::npos);
      ++not_enforced;
    }
  }
  CHECK(not_enforced == 2);  // ProtectSystem=, PrivateDevices=
  if (::access("/etc/rsyncd.conf", F_OK) == 0) {
    CHECK(c.services.at("rsync.service").no_new_privileges);
  } else {
    CHECK_FALSE(c.services.contains("rsync.service"));
  }
}

TEST_CASE("the first directory with a unit wins and drop-ins apply in lexical order",
          "[units][loader][dropin]") {
  TempDir first, second;
  first.write("a.service", "[Service]\nExecStart=/bin/first\nEnvironment=ORDER=main\n");
  second.write("a.service", "[Service]\nExecStart=/bin/second\n");
  second.write("a.service.d/20-b.conf", "[Service]\nEnvironment=ORDER=b\nUser=bee\n");
  first.write("a.service.d/10-a.conf", "[Service]\nEnvironment=ORDER=a\nUser=ay\n");
  // A same-named drop-in in an earlier directory hides the later one.
  first.write("a.service.d/30-c.conf", "[Service]\nNice=1\n");
  second.write("a.service.d/30-c.conf", "[Service]\nNice=2\n");
  second.write("a.service.d/notes.txt", "[Service]\nNice=3\n");
  first.write("a.socket", "[Socket]\nListenStream=127.0.0.1:0\n");
  auto c = load_configuration({first.path(), second.path()}, std::nullopt);
  INFO(messages(c));
  REQUIRE(c.services.contains("a.service"));
  const ServiceUnit& s = c.services.at("a.service");
  CHECK(s.exec_start[0].path == "/bin/first");
  CHECK(s.environment == Strings{"ORDER=b"});
  CHECK(s.user == "bee");
  CHECK(s.nice == 1);
  CHECK(s.info.drop_ins == Strings{first.path() + "/a.service.d/10-a.conf",
                                   second.path() + "/a.service.d/20-b.conf",
                                   first.path() + "/a.service.d/30-c.conf"});
}

TEST_CASE("a drop-in can reset ExecStart= and its diagnostics name the drop-in",
          "[units][loader][dropin]") {
  TempDir dir;
  dir.write("a.service", "[Service]\nExecStart=/bin/old\n");
  std::string dropin = dir.write("a.service.d/override.conf",
                                 "[Service]\nExecStart=\nExecStart=/bin/new\nBogus=1\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  REQUIRE(c.services.contains("a.service"));
  CHECK(c.services.at("a.service").exec_start[0].path == "/bin/new");
  REQUIRE(c.diagnostics.size() == 1);
  CHECK(c.diagnostics[0].to_string() ==
        dropin + ":4: Unknown key name 'Bogus' in section 'Service', ignoring.");
}

TEST_CASE("template drop-ins apply to the template", "[units][loader][dropin][template]") {
  TempDir dir;
  dir.write("t@.service", "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n");
  dir.write("t@.service.d/ready.conf", "[Service]\nX-ReadyLog=^ok\n");
  dir.write("t.socket", "[Socket]\nListenStream=1\nAccept=yes\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  INFO(messages(c));
  CHECK(c.diagnostics.empty());
  CHECK(c.services.at("t@.service").ready_log == "^ok");
}

TEST_CASE("empty or /dev/null unit files mask the unit in later directories", "[units][loader]") {
  TempDir first, second;
  first.write("a.service", "");
  fs::create_symlink("/dev/null", first.path() + "/b.service");
  second.write("a.service", "[Service]\nExecStart=/bin/a\n");
  second.write("b.service", "[Service]\nExecStart=/bin/b\n");
  second.write("c.service", "[Service]\nExecStart=/bin/c\n");
  second.write("README", "not a unit");
  second.write("x.timer", "[Timer]\n");
  auto c = load_configuration({first.path(), second.path()}, std::nullopt);
  INFO(messages(c));
  CHECK(c.diagnostics.empty());
  CHECK(c.services.size() == 1);
  CHECK(c.services.contains("c.service"));
}

TEST_CASE("a failing condition skips the unit with a notice, a failing assert refuses it",
          "[units][loader][conditions]") {
  TempDir dir;
  std::string marker = dir.write("marker", "x");
  dir.write("skip.service",
            "[Unit]\nConditionPathExists=!" + marker + "\n[Service]\nExecStart=/bin/a\n");
  dir.write("run.service",
            "[Unit]\nConditionPathExists=" + marker + "\n[Service]\nExecStart=/bin/a\n");
  dir.write("trig.service", "[Unit]\nConditionPathExists=|/nonexistent\nConditionPathExists=|" +
                                marker + "\n[Service]\nExecStart=/bin/a\n");
  dir.write("notrig.service",
            "[Unit]\nConditionPathExists=|/nonexistent\nConditionPathIsDirectory=|" + marker +
                "\n[Service]\nExecStart=/bin/a\n");
  dir.write("reset.service",
            "[Unit]\nConditionPathExists=/nonexistent\nConditionPathExists=\n[Service]\nExecStart=/"
            "bin/a\n");
  dir.write("assert.service",
            "[Unit]\nAssertPathExists=/nonexistent\n[Service]\nExecStart=/bin/a\n");
  dir.write("skip.socket", "[Socket]\nListenStream=1\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  INFO(messages(c));
  CHECK(c.services.contains("run.service"));
  CHECK(c.services.contains("trig.service"));
  CHECK(c.services.contains("reset.service"));
  CHECK_FALSE(c.services.contains("skip.service"));
  CHECK_FALSE(c.services.contains("notrig.service"));
  CHECK_FALSE(c.services.contains("assert.service"));
  CHECK(c.sockets.empty());
  CHECK(c.failed_units == 1);
  CHECK(messages(c) == "error: " + dir.path() +
                           "/assert.service: Assertion failed for assert.service: "
                           "AssertPathExists=/nonexistent. Refusing.\n"
                           "notice: " +
                           dir.path() +
                           "/notrig.service: Condition check resulted in notrig.service "
                           "being skipped: none of the triggering conditions holds "
                           "(ConditionPathExists=|/nonexistent, ...)\n"
                           "notice: " +
                           dir.path() +
                           "/skip.service: Condition check resulted in skip.service being "
                           "skipped: ConditionPathExists=!" +
                           marker +
                           "\n"
                           "notice: " +
                           dir.path() +
                           "/skip.socket: Skipping skip.socket: its service skip.service "
                           "was skipped by its conditions\n");
}

TEST_CASE("one broken unit does not stop the others", "[units][loader]") {
  TempDir dir;
  dir.write("good.socket", "[Socket]\nListenStream=1\n");
  dir.write("good.service", "[Service]\nExecStart=/bin/a\n");
  dir.write("orphan.socket", "[Socket]\nListenStream=2\n");
  dir.write("perconn.socket", "[Socket]\nListenStream=3\nAccept=yes\n");
  dir.write("nolisten.socket", "[Socket]\nAccept=no\n");
  dir.write("broken.service", "[Service]\nUser=x\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  INFO(messages(c));
  CHECK(c.failed_units == 4);
  REQUIRE(c.sockets.size() == 1);
  CHECK(c.sockets[0].name == "good.socket");
  CHECK(
      messages(c).find(dir.path() +
                       "/perconn.socket: Socket service perconn@.service not loaded, refusing.") !=
      std::string::npos);
  CHECK(messages(c).find(dir.path() +
                         "/orphan.socket: Socket service orphan.service not loaded, refusing.") !=
        std::string::npos);
}

TEST_CASE("a unit file that cannot be read is an error for that unit", "[units][loader]") {
  TempDir dir;
  fs::create_symlink(dir.path() + "/nowhere", dir.path() + "/dangling.service");
  dir.write("ok.service", "[Service]\nExecStart=/bin/a\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  CHECK(c.failed_units == 1);
  CHECK(c.services.contains("ok.service"));
  REQUIRE(c.diagnostics.size() == 1);
  CHECK(c.diagnostics[0].severity == Diagnostic::Severity::error);
  CHECK(c.diagnostics[0].file == dir.path() + "/dangling.service");
}

TEST_CASE("Service= may name an instance of a loaded template", "[units][loader][template]") {
  TempDir dir;
  dir.write("w@.service", "[Service]\nExecStart=/bin/echo %i %I\n");
  dir.write("w.socket", "[Socket]\nListenStream=1\nService=w@a-b.service\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  INFO(messages(c));
  REQUIRE(c.sockets.size() == 1);
  const ServiceUnit& inst = c.services.at("w@a-b.service");
  CHECK(inst.exec_start[0].argv == Strings{"/bin/echo", "a-b", "a/b"});
}

TEST_CASE("instantiate re-applies instance specifiers for each connection", "[units][template]") {
  TempDir dir;
  std::string env = dir.write("env", "GREETING=hi\n");
  dir.write("e@.service",
            "[Unit]\nDescription=Echo for %I\n[Service]\nExecStart=/bin/echo %i %n %N %j\n"
            "EnvironmentFile=" +
                env + "\nEnvironment=WHO=%i\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  INFO(messages(c));
  const ServiceUnit& t = c.services.at("e@.service");
  REQUIRE(t.uses_instance_specifiers);
  // The environment file is not read again: remove it to prove the cached copy is used.
  fs::remove(env);
  std::vector<Diagnostic> d;
  ServiceUnit i = instantiate(t, "7-127.0.0.1:22-127.0.0.1:5000", d);
  CHECK(d.empty());
  CHECK(i.name == "e@7-127.0.0.1:22-127.0.0.1:5000.service");
  CHECK_FALSE(i.is_template);
  CHECK(i.instance == "7-127.0.0.1:22-127.0.0.1:5000");
  CHECK(i.info.description == "Echo for 7/127.0.0.1:22/127.0.0.1:5000");
  CHECK(i.exec_start[0].argv == Strings{"/bin/echo", "7-127.0.0.1:22-127.0.0.1:5000",
                                        "e@7-127.0.0.1:22-127.0.0.1:5000.service",
                                        "e@7-127.0.0.1:22-127.0.0.1:5000", "e"});
  CHECK(i.environment == Strings{"WHO=7-127.0.0.1:22-127.0.0.1:5000", "GREETING=hi"});
}

TEST_CASE("instantiating a template without instance specifiers only renames it",
          "[units][template]") {
  TempDir dir;
  dir.write("p@.service", "[Service]\nExecStart=/bin/cat\n");
  auto c = load_configuration({dir.path()}, std::nullopt);
  const ServiceUnit& t = c.services.at("p@.service");
  CHECK_FALSE(t.uses_instance_specifiers);
  std::vector<Diagnostic> d;
  ServiceUnit i = instantiate(t, "1", d);
  CHECK(i.name == "p@1.service");
  CHECK(i.exec_start[0].argv == t.exec_start[0].argv);
  CHECK(d.empty());
}

TEST_CASE("usherd.conf given explicitly must exist, and defaults need no file",
          "[units][loader][daemon]") {
  TempDir dir;
  auto none = load_configuration({dir.path()}, std::nullopt);
  CHECK(none.daemon_config_ok);
  CHECK(none.daemon.path.empty());
  auto missing = load_configuration({dir.path()}, dir.path() + "/usherd.conf");
  CHECK_FALSE(missing.daemon_config_ok);
  REQUIRE(missing.diagnostics.size() == 1);
  CHECK(missing.diagnostics[0].severity == Diagnostic::Severity::error);
  std::string conf = dir.write("usherd.conf", "[Policy]\nMaxStartups=4\n");
  auto ok = load_configuration({dir.path()}, conf);
  CHECK(ok.daemon_config_ok);
  CHECK(ok.daemon.max_startups.full == 4);
}

TEST_CASE("the check summary lists every address with its type", "[units][loader]") {
  SocketUnit s;
  s.name = "tftp.socket";
  s.service = "tftp.service";
  ListenAddress a;
  a.type = SocketType::datagram;
  a.host = "127.0.0.1";
  a.port = 69;
  s.listen.push_back(a);
  a.type = SocketType::stream;
  a.family = ListenAddress::unix_path;
  a.path = "/run/t.sock";
  s.listen.push_back(a);
  CHECK(check_summary(s) ==
        "tftp.socket: listen datagram:127.0.0.1:69,/run/t.sock accept=no service=tftp.service");
}

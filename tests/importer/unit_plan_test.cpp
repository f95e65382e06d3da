// Writing unit files: words that need quoting and escaping survive the real parser, values a
// unit line cannot carry are refused, and writing never overwrites a file.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/catch.h"

#include "importer/importer.h"
#include "importer/sshd_readiness.h"
#include "importer/unit_plan.h"

using namespace usherd::importer;
namespace fs = std::filesystem;

namespace {

UnitPlan plan_with(std::vector<std::string> args) {
  UnitPlan plan;
  plan.stem = "probe";
  plan.description = "probe 100% (test)";
  plan.origin = "A test.";
  plan.accept = true;
  plan.socket.push_back({"ListenStream", "127.0.0.1:0", ""});
  plan.add_socket("Accept", "yes");
  plan.exec.path = "/usr/bin/printf";
  plan.exec.args = std::move(args);
  plan.add_service("StandardInput", "socket");
  return plan;
}

}  // namespace

TEST_CASE("command-line words reach the program exactly as written", "[importer][units]") {
  // render_units() parses the result with units/ and compares the argv it would exec; a
  // word that did not survive makes it fail, so success is the claim.
  std::vector<std::string> args = {"plain", "two words", "$HOME",      "${HOME}",   "$$",
                                   "100%",  "%n",        "\"quoted\"", "'single'",  "back\\slash",
                                   ";",     "\\;",       "tab\there",  "new\nline", "",
                                   "-",     "@at",       "ümlaut"};
  UnitPlan plan = plan_with(args);
  plan.exec.argv0 = "argv zero";
  plan.set_environment("A", "x y \"z\" 50% $B");
  auto units = render_units(plan, {});
  REQUIRE(units);
  REQUIRE(units->size() == 2);
  CHECK((*units)[0].name == "probe.socket");
  CHECK((*units)[1].name == "probe@.service");
  CHECK((*units)[1].text.find("ExecStart=@/usr/bin/printf \"argv zero\" plain \"two words\" "
                              "\"$$HOME\"") != std::string::npos);
}

TEST_CASE("values a unit line cannot carry are refused, not mangled", "[importer][units]") {
  CHECK_FALSE(plain_value("a\nb"));
  CHECK_FALSE(plain_value(" leading"));
  CHECK_FALSE(plain_value("trailing\\"));
  CHECK(*plain_value("50%") == "50%%");
  UnitPlan plan = plan_with({});
  plan.exec.path = "relative/path";
  CHECK_FALSE(render_units(plan, {}));
  CHECK(unit_stem("org.example.job") == "org.example.job");
  CHECK(unit_stem("my service@host") == "my_service_host");
  CHECK_FALSE(unit_stem("..."));
  CHECK_FALSE(unit_stem(""));
}

TEST_CASE("warnings are listed at the top of both units", "[importer][units]") {
  std::vector<Finding> findings = {
      {Severity::warning, "f", 3, "service probe", "banner = /x: usherd sends no banner"},
      {Severity::notice, "f", 4, "service probe", "not listed"},
  };
  auto units = render_units(plan_with({}), findings);
  REQUIRE(units);
  for (const auto& unit : *units) {
    CHECK(unit.text.rfind("# A test.\n# Not carried over as it was (each also reported as a "
                          "warning):\n#   f:3: banner = /x: usherd sends no banner\n[Unit]\n",
                          0) == 0);
  }
}

TEST_CASE("sshd -i is recognised through grouped options and values", "[importer][sshd]") {
  auto is_sshd = [](std::string path, std::vector<std::string> args) {
    ExecLine e;
    e.path = std::move(path);
    e.args = std::move(args);
    return is_sshd_per_connection(e);
  };
  CHECK(is_sshd("/usr/sbin/sshd", {"-i"}));
  CHECK(is_sshd("/usr/sbin/sshd", {"-Dei"}));
  CHECK(is_sshd("/usr/sbin/sshd", {"-f", "/etc/ssh/x", "-i"}));
  CHECK_FALSE(is_sshd("/usr/sbin/sshd", {"-f", "-i"}));  // -i is -f's value here
  CHECK_FALSE(is_sshd("/usr/sbin/sshd", {"-fi"}));       // so is "i" here
  CHECK_FALSE(is_sshd("/usr/sbin/sshd", {"-D"}));
  CHECK_FALSE(is_sshd("/usr/sbin/dropbear", {"-i"}));
}

TEST_CASE("write_units writes every unit and never overwrites one", "[importer][units]") {
  char pattern[] = "/tmp/usherd-write-units.XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  std::string dir = pattern;
  Report report;
  Job job;
  job.outcome = Outcome::imported;
  job.units = *render_units(plan_with({"x"}), {});
  report.jobs.push_back(job);
  auto written = write_units(report, dir);
  REQUIRE(written);
  CHECK(written->size() == 2);
  struct stat st {};
  REQUIRE(::stat((dir + "/probe@.service").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  std::ofstream(dir + "/probe@.service") << "edited by hand\n";
  auto again = write_units(report, dir);
  REQUIRE_FALSE(again);
  CHECK(again.error().message.find("already exists") != std::string::npos);
  std::ifstream in(dir + "/probe@.service");
  std::string first;
  std::getline(in, first);
  CHECK(first == "edited by hand");
  CHECK_FALSE(write_units(report, dir + "/missing"));
  CHECK(print_units(report).rfind("### probe.socket\n# A test.\n", 0) == 0);
  fs::remove_all(dir);
}

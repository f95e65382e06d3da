// Golden imports: every directory under data/golden/ holds input files, a file "command"
// ("xinetd|launchd [--allow-open] [--include-disabled] FILE..." with paths relative to the
// directory) and a file "expected": the findings, the counts and every generated unit, byte
// for byte, as usherctl prints them (paths relative to the case). Optional hosts.allow /
// hosts.deny stand in for /etc's. To add a case, write "expected" by hand from what the
// importer must say; never paste the actual output without reading every line of it.
//
// The second test loads the units every case generates with the real usherd binary
// (`usherd --check`), which must accept them.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/catch.h"

#include "importer/importer.h"
#include "test_system.h"

using namespace usherd::importer;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string dir;
  std::string kind;
  Options options;
  std::vector<std::string> paths;
};

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

Case load_case(const std::string& name) {
  Case c;
  c.dir = (fs::path(USHERD_TEST_DATA_DIR) / "golden" / name).string();
  std::istringstream words(read(fs::path(c.dir) / "command"));
  words >> c.kind;
  for (std::string w; words >> w;) {
    if (w == "--allow-open") {
      c.options.allow_open = true;
    } else if (w == "--include-disabled") {
      c.options.include_disabled = true;
    } else {
      c.paths.push_back(c.dir + "/" + w);
    }
  }
  return c;
}

Report run(const Case& c) {
  bool hosts =
      fs::exists(fs::path(c.dir) / "hosts.allow") || fs::exists(fs::path(c.dir) / "hosts.deny");
  testing::TestSystem system(hosts ? c.dir : "");
  return c.kind == "xinetd" ? import_xinetd(c.paths, c.options, system)
                            : import_launchd(c.paths, c.options, system);
}

std::string render(const Report& report, const std::string& dir) {
  std::string out;
  for (const auto& f : report.all_findings()) out += f.to_string() + "\n";
  unsigned counts[3] = {0, 0, 0};
  for (const auto& job : report.jobs) ++counts[static_cast<int>(job.outcome)];
  out += "-- " + std::to_string(counts[0]) + " imported, " + std::to_string(counts[1]) +
         " disabled (skipped), " + std::to_string(counts[2]) + " not importable\n";
  out += print_units(report);
  for (std::size_t at; (at = out.find(dir + "/")) != std::string::npos;)
    out.erase(at, dir.size() + 1);
  return out;
}

std::vector<std::string> cases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(USHERD_TEST_DATA_DIR) / "golden"))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Runs a command, returning its exit status and everything it printed.
int run_command(const std::string& command, std::string& output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("each golden import produces exactly its expected findings and units",
          "[importer][golden]") {
  auto all = cases();
  REQUIRE(all.size() >= 8);
  for (const std::string& name : all) {
    DYNAMIC_SECTION(name) {
      Case c = load_case(name);
      REQUIRE(!c.paths.empty());
      std::string expected = read(fs::path(c.dir) / "expected");
      std::string actual = render(run(c), c.dir);
      // USHERD_IMPORTER_ACTUAL_DIR=DIR writes what the importer said, for reading it when a
      // case is added or changed (never into the source tree).
      if (const char* out = std::getenv("USHERD_IMPORTER_ACTUAL_DIR"))
        std::ofstream(fs::path(out) / name) << actual;
      REQUIRE(!expected.empty());
      CHECK(actual == expected);
    }
  }
}

TEST_CASE("the units of every golden import pass usherd --check", "[importer][golden][check]") {
  std::string usherd = std::string(USHERD_BIN_DIR) + "/usherd";
  REQUIRE(::access(usherd.c_str(), X_OK) == 0);
  std::vector<std::pair<std::string, Report>> with_units;
  for (const std::string& name : cases()) {
    Report report = run(load_case(name));
    if (std::any_of(report.jobs.begin(), report.jobs.end(),
                    [](const Job& j) { return !j.units.empty(); }))
      with_units.emplace_back(name, std::move(report));
  }
  REQUIRE(with_units.size() >= 6);
  for (const auto& [name, report] : with_units) {
    DYNAMIC_SECTION(name) {
      char pattern[] = "/tmp/usherd-import-check.XXXXXX";
      REQUIRE(::mkdtemp(pattern) != nullptr);
      std::string dir = pattern;
      auto written = write_units(report, dir);
      REQUIRE(written);
      std::string output;
      int rc = run_command(usherd + " --check --units " + dir, output);
      INFO(output);
      CHECK(rc == 0);
      CHECK(output.find(" 0 errors") != std::string::npos);
      fs::remove_all(dir);
    }
  }
}

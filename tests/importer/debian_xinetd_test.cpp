// Debian's own xinetd configuration, as the xinetd package installs it: every file under
// /etc/xinetd.d/ (the list comes from dpkg's record of the package, so a file added in a
// later Debian release is covered too) defines only xinetd's built-in services, which are all
// disabled. Each must be reported as skipped (a disabled service is not running, so nothing
// is lost), by file, line and name, with a word that it would not be importable anyway; the
// import succeeds and generates nothing. With --include-disabled each is an error: a built-in
// service cannot be imported. scripts/install-deps.sh installs xinetd for this test.
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/catch.h"

#include "importer/importer.h"
#include "test_system.h"

using namespace usherd::importer;

namespace {

std::vector<std::string> packaged_service_files() {
  std::ifstream list("/var/lib/dpkg/info/xinetd.list");
  std::vector<std::string> out;
  for (std::string line; std::getline(list, line);) {
    if (line.rfind("/etc/xinetd.d/", 0) == 0 && std::filesystem::is_regular_file(line))
      out.push_back(line);
  }
  return out;
}

// The service names a file defines ("service NAME" lines), with their lines.
std::vector<std::pair<std::string, unsigned>> services_in(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::pair<std::string, unsigned>> out;
  unsigned number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    std::istringstream words(line);
    std::string keyword, name;
    if (words >> keyword >> name && keyword == "service") out.emplace_back(name, number);
  }
  return out;
}

}  // namespace

TEST_CASE("every service Debian's xinetd package installs is skipped as disabled",
          "[importer][xinetd][debian]") {
  auto files = packaged_service_files();
  REQUIRE(files.size() >= 10);  // chargen, daytime, discard, echo, time (+ -udp), servers, ...
  testing::TestSystem system;
  for (const std::string& file : files) {
    DYNAMIC_SECTION(file) {
      Report report = import_xinetd({file}, {}, system);
      auto expected = services_in(file);
      REQUIRE(!expected.empty());
      CHECK(report.findings.empty());
      REQUIRE(report.jobs.size() == expected.size());
      for (std::size_t i = 0; i < expected.size(); ++i) {
        const Job& job = report.jobs[i];
        CHECK(job.name == expected[i].first);
        CHECK(job.line == expected[i].second);
        CHECK(job.outcome == Outcome::disabled);
        CHECK(job.units.empty());
        REQUIRE(job.findings.size() == 1);
        const Finding& f = job.findings.front();
        CHECK(f.severity == Severity::notice);
        CHECK(f.file == file);
        CHECK(f.line > job.line);
        CHECK(f.subject == "service " + expected[i].first);
        CHECK(f.message.find("skipped: disabled (disable = yes)") == 0);
        CHECK(f.message.find("not importable even with --include-disabled") != std::string::npos);
        CHECK(f.message.find("built-in services") != std::string::npos);
      }
      CHECK(report.ok());
    }
  }
}

TEST_CASE("Debian's built-in services are not importable with --include-disabled",
          "[importer][xinetd][debian]") {
  auto files = packaged_service_files();
  REQUIRE(!files.empty());
  testing::TestSystem system;
  Options include;
  include.include_disabled = true;
  for (const std::string& file : files) {
    DYNAMIC_SECTION(file) {
      Report report = import_xinetd({file}, include, system);
      REQUIRE(!report.jobs.empty());
      for (const Job& job : report.jobs) {
        CHECK(job.outcome == Outcome::failed);
        REQUIRE(job.findings.size() == 1);
        const Finding& f = job.findings.front();
        CHECK(f.severity == Severity::error);
        CHECK(f.message.find("type = INTERNAL") == 0);
        CHECK(f.message.find("not importable") != std::string::npos);
        CHECK(f.message.find("it is disabled, too") != std::string::npos);
      }
      CHECK_FALSE(report.ok());
    }
  }
}

TEST_CASE("Debian's xinetd.conf reaches every packaged service through includedir",
          "[importer][xinetd][debian]") {
  auto files = packaged_service_files();
  REQUIRE(!files.empty());
  testing::TestSystem system;
  Report report = import_xinetd({"/etc/xinetd.conf"}, {}, system);
  CHECK(report.findings.empty());
  std::set<std::string> seen;
  for (const Job& job : report.jobs) {
    CHECK(job.outcome == Outcome::disabled);
    seen.insert(job.file);
  }
  for (const std::string& file : files) CHECK(seen.count(file) == 1);
  // What usherctl's exit status follows: nothing failed, so the import exits 0.
  CHECK(report.ok());
  CHECK(print_units(report).empty());
  // With --include-disabled they are still built-in services, still not importable.
  Options include;
  include.include_disabled = true;
  Report again = import_xinetd({"/etc/xinetd.d"}, include, system);
  CHECK(again.jobs.size() == report.jobs.size());
  for (const Job& job : again.jobs) CHECK(job.outcome == Outcome::failed);
  CHECK(print_units(again).empty());
}

// The corpus: small xinetd files and launchd plists in the shapes admins really have
// (comments after values, on log flags, in the defaults entry and naming an address in an
// access list, CRLF, tabs, a byte order mark, includedir with editor leftovers, Debian's
// disabled built-ins, cups' SockPathMode, Apple's sshd jobs old and new, Instances, UID/GID,
// relative and bare Program paths, binary plists, ...), each run through the real `usherctl
// import` three ways: plain, --allow-open and --include-disabled.
//
// Whatever a file holds, the outcome must be one of two: the units written pass
// `usherd --check`, or the file is refused with an error line that names the file, the line
// (0 only for a fault of the whole file, such as a binary plist) and a reason, and never with
// one of the importer's internal errors (units that would not load). data/corpus/EXPECTED
// pins each file's exit status per way, so a file that stops importing is noticed too.
//
// These files are written for the test, in the shapes of public ones; none is a copy.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/catch.h"

namespace fs = std::filesystem;

namespace {

struct Way {
  const char* name;
  const char* flags;
};
constexpr Way kWays[] = {
    {"plain", ""}, {"allow-open", " --allow-open"}, {"include-disabled", " --include-disabled"}};

// "KIND/FILE" -> the expected exit status of each way, from EXPECTED.
std::map<std::string, std::vector<int>> expected_statuses() {
  std::ifstream in(fs::path(USHERD_TEST_DATA_DIR) / "corpus" / "EXPECTED");
  std::map<std::string, std::vector<int>> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() == '#') continue;
    std::istringstream words(line);
    std::string file;
    int plain = -1, open = -1, disabled = -1;
    words >> file >> plain >> open >> disabled;
    out[file] = {plain, open, disabled};
  }
  return out;
}

// Runs a shell command; stdout and stderr go to the given strings.
int run(const std::string& command, std::string& out, std::string& err) {
  char pattern[] = "/tmp/usherd-corpus-err.XXXXXX";
  int fd = ::mkstemp(pattern);
  REQUIRE(fd >= 0);
  ::close(fd);
  FILE* pipe = ::popen((command + " 2>" + pattern).c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int status = ::pclose(pipe);
  std::ifstream e(pattern);
  std::stringstream text;
  text << e.rdbuf();
  err = text.str();
  fs::remove(pattern);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE(
    "every corpus file imports to units usherd accepts or is refused with file, line and reason",
    "[importer][corpus]") {
  std::string bin = USHERD_BIN_DIR;
  REQUIRE(::access((bin + "/usherctl").c_str(), X_OK) == 0);
  REQUIRE(::access((bin + "/usherd").c_str(), X_OK) == 0);
  auto expected = expected_statuses();
  REQUIRE(expected.size() >= 20);
  std::size_t seen = 0;
  for (const char* kind : {"xinetd", "launchd"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(USHERD_TEST_DATA_DIR) / "corpus" / kind))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      std::string key = std::string(kind) + "/" + file.filename().string();
      ++seen;
      for (std::size_t w = 0; w < std::size(kWays); ++w) {
        DYNAMIC_SECTION(key << " " << kWays[w].name) {
          REQUIRE(expected.count(key) == 1);
          char pattern[] = "/tmp/usherd-corpus.XXXXXX";
          REQUIRE(::mkdtemp(pattern) != nullptr);
          std::string dir = pattern;
          std::string out, err;
          int rc = run(bin + "/usherctl import " + kind + " " + file.string() + " --to " + dir +
                           kWays[w].flags,
                       out, err);
          INFO(err);
          CHECK(rc == expected[key][w]);
          REQUIRE((rc == 0 || rc == 1));
          // An error line: "FILE[:LINE]: error: [service NAME: | job LABEL: ]REASON". An
          // error about an included file names that file.
          bool names_this_file = false;
          for (const std::string& line : lines_of(err)) {
            CHECK(line.find("cannot write the units") == std::string::npos);
            CHECK(line.find("do not load cleanly") == std::string::npos);
            std::size_t at = line.find(": error: ");
            if (at == std::string::npos) continue;
            std::string where = line.substr(0, at), reason = line.substr(at + 9);
            std::size_t colon = where.rfind(':');
            bool has_line = colon != std::string::npos && colon + 1 < where.size() &&
                            where.find_first_not_of("0123456789", colon + 1) == std::string::npos;
            std::string named = has_line ? where.substr(0, colon) : where;
            if (named == file.string()) names_this_file = true;
            CHECK(fs::exists(named));
            CHECK(reason.size() > 10);  // a reason, not a bare word
            // Only a fault of the whole file (a binary plist) has no line to name.
            if (reason.find("binary property list") == std::string::npos) CHECK(has_line);
          }
          if (rc == 1) CHECK(err.find(": error: ") != std::string::npos);
          if (rc == 1 && kind == std::string("launchd")) CHECK(names_this_file);
          if (rc == 0) CHECK(err.find(": error: ") == std::string::npos);
          if (!fs::is_empty(dir)) {
            std::string check_out, check_err;
            int check = run(bin + "/usherd --check --units " + dir, check_out, check_err);
            INFO(check_out << check_err);
            CHECK(check == 0);
            CHECK((check_out + check_err).find(" 0 errors") != std::string::npos);
          }
          fs::remove_all(dir);
        }
      }
    }
  }
  CHECK(seen == expected.size());
}

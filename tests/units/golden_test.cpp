// Golden diagnostics: every directory under data/broken/ is a unit directory (plus an optional
// usherd.conf) whose complete diagnostic output must equal its file "expected", byte for byte.
// Paths are printed relative to the case directory so the goldens do not depend on where the
// tree is checked out. To add a case, create the directory and write "expected" by hand from
// what systemd would say; never paste the actual output without reading it.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/catch.h"

#include "units/loader.h"

using namespace usherd::units;
namespace fs = std::filesystem;

namespace {

std::string render(const Configuration& c, const std::string& dir) {
  std::string out;
  for (const auto& d : c.diagnostics) {
    std::string line = std::string(to_string(d.severity)) + ": " + d.to_string();
    for (std::size_t at; (at = line.find(dir + "/")) != std::string::npos;)
      line.erase(at, dir.size() + 1);
    out += line + "\n";
  }
  out += "loaded: " + std::to_string(c.sockets.size()) + " sockets, " +
         std::to_string(c.services.size()) + " services, " + std::to_string(c.failed_units) +
         " failed, usherd.conf " + (c.daemon_config_ok ? "ok" : "rejected") + "\n";
  return out;
}

std::vector<std::string> cases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(USHERD_TEST_DATA_DIR) / "broken")) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("each broken fixture produces exactly its expected diagnostics", "[units][golden]") {
  auto all = cases();
  REQUIRE(all.size() >= 10);
  for (const std::string& name : all) {
    DYNAMIC_SECTION(name) {
      std::string dir = (fs::path(USHERD_TEST_DATA_DIR) / "broken" / name).string();
      std::optional<std::string> conf;
      if (fs::exists(dir + "/usherd.conf")) conf = dir + "/usherd.conf";
      auto c = load_configuration({dir}, conf);
      std::ifstream in(dir + "/expected");
      REQUIRE(in);
      std::stringstream expected;
      expected << in.rdbuf();
      CHECK(render(c, dir) == expected.str());
    }
  }
}

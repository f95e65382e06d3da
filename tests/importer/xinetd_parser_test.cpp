// xinetd.conf(5) syntax as xinetd reads it: entries, operators, comments, includes, and
// errors that spoil one entry only.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/catch.h"

#include "importer/xinetd_parser.h"
#include "test_system.h"

using namespace usherd::importer;
namespace fs = std::filesystem;

namespace {

XinetdConfig parse(const std::string& text) {
  XinetdConfig config;
  testing::TestSystem system;
  parse_xinetd_text(text, "test.conf", system, config);
  return config;
}

// A scratch directory, removed at the end of the test.
struct Scratch {
  fs::path dir;
  Scratch() {
    char pattern[] = "/tmp/usherd-xinetd-parser.XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    dir = pattern;
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    fs::create_directories((dir / name).parent_path());
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
};

}  // namespace

TEST_CASE("attribute lines keep their operator, values and line", "[importer][xinetd]") {
  auto c = parse(
      "# comment\n"
      "service finger\n"
      "{\n"
      "   server_args = -w  -u\t-l\n"
      "   only_from += 192.0.2.0/24\n"
      "\t# a comment line inside the entry\n"
      "   no_access -= 10.0.0.1 # not a comment: a value\n"
      "   only_from =\n"
      "}\n");
  CHECK(c.findings.empty());
  REQUIRE(c.entries.size() == 1);
  const XinetdEntry& e = c.entries[0];
  CHECK(e.name == "finger");
  CHECK(e.line == 2);
  CHECK(e.errors.empty());
  REQUIRE(e.attributes.size() == 4);
  CHECK(e.attributes[0].values == std::vector<std::string>{"-w", "-u", "-l"});
  CHECK(e.attributes[0].op == AssignOp::set);
  CHECK(e.attributes[1].op == AssignOp::add);
  CHECK(e.attributes[2].op == AssignOp::remove);
  CHECK(e.attributes[2].values ==
        std::vector<std::string>{"10.0.0.1", "#", "not", "a", "comment:", "a", "value"});
  CHECK(e.attributes[2].line == 7);
  CHECK(e.attributes[3].values.empty());
  CHECK(e.attributes[3].text() == "only_from =");
}

TEST_CASE("a syntax error spoils its own entry and the next one is read", "[importer][xinetd]") {
  auto c = parse(
      "service a\n"
      "{\n"
      "   port=79\n"
      "   user = root\n"
      "}\n"
      "service b {\n"  // xinetd wants '{' on a line of its own
      "   user = root\n"
      "}\n"
      "service c\n"
      "{\n"
      "   user ~ root\n"
      "}\n"
      "service d\n"
      "{\n"
      "   user = root\n"
      "}\n");
  REQUIRE(c.entries.size() == 4);
  REQUIRE(c.entries[0].errors.size() == 1);
  CHECK(c.entries[0].errors[0].line == 3);
  CHECK(c.entries[0].errors[0].to_string() ==
        "test.conf:3: error: service a: attribute 'port' needs a blank before its operator");
  REQUIRE(c.entries[1].errors.size() == 1);
  CHECK(c.entries[1].errors[0].line == 7);
  REQUIRE(c.entries[2].errors.size() == 1);
  CHECK(c.entries[2].errors[0].message == "bad operator for attribute 'user'");
  CHECK(c.entries[3].errors.empty());
  CHECK(c.entries[3].attributes.size() == 1);
}

TEST_CASE("includedir reads regular files in C-locale order and skips dotted and ~ names",
          "[importer][xinetd]") {
  Scratch s;
  s.write("d/b", "service b\n{\n}\n");
  s.write("d/A", "service A\n{\n}\n");
  s.write("d/a", "service a\n{\n}\n");
  s.write("d/c.dpkg-old", "service skipped1\n{\n}\n");
  s.write("d/c~", "service skipped2\n{\n}\n");
  s.write("d/.hidden", "service skipped3\n{\n}\n");
  s.write("d/sub/x", "service skipped4\n{\n}\n");
  std::string conf = s.write("xinetd.conf", "includedir d\n");
  testing::TestSystem system;
  XinetdConfig c = read_xinetd({conf}, system);
  CHECK(c.findings.empty());
  std::vector<std::string> names;
  for (const auto& e : c.entries) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"A", "a", "b"});
  // A directory named on the command line is read the same way.
  XinetdConfig direct = read_xinetd({(s.dir / "d").string()}, system);
  CHECK(direct.entries.size() == 3);
}

TEST_CASE("include loops and unreadable includes are errors naming the line",
          "[importer][xinetd]") {
  Scratch s;
  std::string a = s.write("a", "include b\nservice x\n{\n}\n");
  s.write("b", "include a\ninclude missing\n");
  testing::TestSystem system;
  XinetdConfig c = read_xinetd({a}, system);
  REQUIRE(c.findings.size() == 2);
  CHECK(c.findings[0].file == (s.dir / "b").string());
  CHECK(c.findings[0].line == 1);
  CHECK(c.findings[0].message.find("include loop") == 0);
  CHECK(c.findings[1].line == 2);
  CHECK(c.findings[1].message.find("cannot read included file") == 0);
  CHECK(c.entries.size() == 1);
}

TEST_CASE("an unfinished entry and a stray word are reported", "[importer][xinetd]") {
  auto c = parse("service\n{\n}\nfrobnicate\n{\n}\nservice z\n{\n  wait = no\n");
  REQUIRE(c.findings.size() == 2);
  CHECK(c.findings[0].to_string() == "test.conf:1: error: service name missing");
  CHECK(c.findings[1].line == 4);
  REQUIRE(c.entries.size() == 1);
  REQUIRE(c.entries[0].errors.size() == 1);
  CHECK(c.entries[0].errors[0].to_string() ==
        "test.conf:7: error: service z: missing '}' before the end of the file");
}

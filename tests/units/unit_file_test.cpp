// The line syntax: sections, assignments, comments, continuations.
#include "units/unit_file.h"

#include "tests/catch.h"

using namespace usherd::units;

namespace {

std::vector<Entry> parse(std::string_view text, std::vector<Diagnostic>& diagnostics) {
  return parse_unit_text(text, "t.service", {"Unit", "Service", "Install"}, diagnostics);
}

}  // namespace

TEST_CASE("assignments carry their section, stripped key and value, and line", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("[Unit]\nDescription =  hello world  \n\n[Service]\nExecStart=/bin/true\n", d);
  CHECK(d.empty());
  REQUIRE(e.size() == 2);
  CHECK(e[0].section == "Unit");
  CHECK(e[0].key == "Description");
  CHECK(e[0].value == "hello world");
  CHECK(e[0].line == 2);
  CHECK(e[1].section == "Service");
  CHECK(e[1].line == 5);
  CHECK(e[1].file == "t.service");
}

TEST_CASE("hash and semicolon lines are comments, inline text is not", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("# c\n  ; c\n[Service]\nExecStart=/bin/echo a # b\n", d);
  CHECK(d.empty());
  REQUIRE(e.size() == 1);
  CHECK(e[0].value == "/bin/echo a # b");
}

TEST_CASE("a trailing backslash joins the next line with a space", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("[Service]\nExecStart=/bin/echo a \\\n  b\\\n# skipped comment\nc\nUser=x\n", d);
  CHECK(d.empty());
  REQUIRE(e.size() == 2);
  CHECK(e[0].value == "/bin/echo a    b c");
  CHECK(e[0].line == 5);
  CHECK(e[1].key == "User");
}

TEST_CASE("an escaped backslash at the end of a line does not continue it", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("[Service]\nExecStart=/bin/echo a\\\\\nUser=x\n", d);
  REQUIRE(e.size() == 2);
  CHECK(e[0].value == "/bin/echo a\\\\");
}

TEST_CASE("CRLF line endings are accepted", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("[Service]\r\nUser=x\r\n", d);
  REQUIRE(e.size() == 1);
  CHECK(e[0].value == "x");
}

TEST_CASE("unknown sections warn, X- sections are silent, both are dropped", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("[Foo]\nA=1\n[X-Mine]\nB=2\n[Service]\nC=3\n", d);
  REQUIRE(e.size() == 1);
  CHECK(e[0].key == "C");
  REQUIRE(d.size() == 1);
  CHECK(d[0].to_string() == "t.service:1: Unknown section 'Foo'. Ignoring.");
}

TEST_CASE("malformed lines are warnings naming the line", "[units][syntax]") {
  std::vector<Diagnostic> d;
  auto e = parse("A=1\n[Service]\njust words\n=value\n", d);
  CHECK(e.empty());
  REQUIRE(d.size() == 3);
  CHECK(d[0].to_string() == "t.service:1: Assignment outside of section. Ignoring.");
  CHECK(d[1].to_string() == "t.service:3: Missing '=', ignoring line.");
  CHECK(d[2].to_string() == "t.service:4: Missing key name before '=', ignoring line.");
  CHECK(d[0].severity == Diagnostic::Severity::warning);
}

TEST_CASE("a diagnostic for the whole file has no line number", "[units][syntax]") {
  Diagnostic d{Diagnostic::Severity::error, "/x/a.socket", 0, "Refusing."};
  CHECK(d.to_string() == "/x/a.socket: Refusing.");
  d.line = 7;
  CHECK(d.to_string() == "/x/a.socket:7: Refusing.");
}

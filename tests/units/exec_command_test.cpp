// ExecStart= parsing (prefixes, quoting, ';') and $VAR expansion.
#include "units/exec_command.h"

#include "tests/catch.h"

using namespace usherd::units;
using Strings = std::vector<std::string>;

namespace {

ExecCommand one(std::string_view value) {
  auto parsed = parse_exec_value(value);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  return parsed->front();
}

}  // namespace

TEST_CASE("a plain command keeps the path as argv[0]", "[units][exec]") {
  auto c = one("/usr/sbin/sshd -i -e");
  CHECK(c.path == "/usr/sbin/sshd");
  CHECK(c.argv == Strings{"/usr/sbin/sshd", "-i", "-e"});
  CHECK_FALSE(c.ignore_failure);
  CHECK_FALSE(c.no_expand);
}

TEST_CASE("prefixes set their flags in any order", "[units][exec]") {
  auto c = one("-/usr/sbin/sshd -i $SSHD_OPTS");
  CHECK(c.ignore_failure);
  CHECK(c.path == "/usr/sbin/sshd");
  CHECK(c.argv == Strings{"/usr/sbin/sshd", "-i", "$SSHD_OPTS"});

  auto at = one("@/usr/sbin/sshd sshd-usherd -i");
  CHECK(at.path == "/usr/sbin/sshd");
  CHECK(at.argv == Strings{"sshd-usherd", "-i"});

  auto all = one(":-+@/bin/x name a");
  CHECK(all.no_expand);
  CHECK(all.ignore_failure);
  CHECK(all.full_privileges);
  CHECK(all.argv == Strings{"name", "a"});

  auto bang = one("!/bin/x");
  CHECK(bang.skip_credentials);
  CHECK_FALSE(bang.full_privileges);

  auto bangbang = one("!!/bin/x");
  CHECK_FALSE(bangbang.skip_credentials);
  CHECK(bangbang.path == "/bin/x");
}

TEST_CASE("a repeated or conflicting prefix is not a prefix", "[units][exec]") {
  CHECK_FALSE(parse_exec_value("--/bin/x"));
  CHECK_FALSE(parse_exec_value("+!/bin/x"));
  CHECK_FALSE(parse_exec_value("-"));
  CHECK_FALSE(parse_exec_value("@/bin/x"));
}

TEST_CASE("the executable is absolute and normalized, or a bare name", "[units][exec]") {
  CHECK(one("true").path == "true");
  CHECK_FALSE(parse_exec_value("bin/true"));
  CHECK_FALSE(parse_exec_value("/usr/../bin/true"));
  CHECK_FALSE(parse_exec_value("/usr/bin/"));
  CHECK_FALSE(parse_exec_value("/usr//bin/true"));
}

TEST_CASE("quotes group words and C escapes are resolved", "[units][exec]") {
  auto c = one(R"(/bin/sh -c "echo 'a b'\tdone" x\x41)");
  CHECK(c.argv == Strings{"/bin/sh", "-c", "echo 'a b'\tdone", "xA"});
  CHECK_FALSE(parse_exec_value("/bin/sh -c \"unterminated"));
}

TEST_CASE("a lone semicolon separates commands and an escaped one is literal", "[units][exec]") {
  auto parsed = parse_exec_value("/bin/a 1 ; -/bin/b \\; 2");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0].argv == Strings{"/bin/a", "1"});
  CHECK((*parsed)[1].ignore_failure);
  CHECK((*parsed)[1].argv == Strings{"/bin/b", ";", "2"});
  CHECK(one("/bin/a x;y").argv == Strings{"/bin/a", "x;y"});
}

TEST_CASE("$VAR as a word splits at whitespace, unset or empty gives no word", "[units][exec]") {
  auto c = one("/usr/sbin/sshd -i $SSHD_OPTS $UNSET $EMPTY end");
  auto argv = expand_exec_argv(c, {"SSHD_OPTS=-o 'Banner none' -4", "EMPTY="});
  REQUIRE(argv);
  CHECK(*argv == Strings{"/usr/sbin/sshd", "-i", "-o", "Banner none", "-4", "end"});
}

TEST_CASE("${VAR} is one word anywhere, $$ is a dollar, $VAR inside a word stays",
          "[units][exec]") {
  auto c = one("/bin/x ${A} --opt=${A} ${UNSET} $$HOME --raw=$A cost$$5");
  auto argv = expand_exec_argv(c, {"A=one two"});
  REQUIRE(argv);
  CHECK(*argv == Strings{"/bin/x", "one two", "--opt=one two", "", "$HOME", "--raw=$A", "cost$5"});
}

TEST_CASE("the last assignment of a variable wins", "[units][exec]") {
  auto argv = expand_exec_argv(one("/bin/x ${A}"), {"A=1", "B=2", "A=3"});
  CHECK(*argv == Strings{"/bin/x", "3"});
}

TEST_CASE("${VAR:-default} and ${VAR:+alternate} follow the shell", "[units][exec]") {
  auto argv = expand_exec_argv(one("/bin/x ${A:-d} ${B:-d} ${A:+alt} ${B:+alt}"), {"A=set"});
  CHECK(*argv == Strings{"/bin/x", "set", "d", "alt", ""});
}

TEST_CASE("the colon prefix disables expansion", "[units][exec]") {
  auto c = one(":/bin/echo $HOME ${HOME}");
  CHECK(*expand_exec_argv(c, {"HOME=/root"}) == Strings{"/bin/echo", "$HOME", "${HOME}"});
}

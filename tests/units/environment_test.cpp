// Environment lists and EnvironmentFile= syntax.
#include "units/environment.h"

#include "tests/catch.h"

using namespace usherd::units;
using Strings = std::vector<std::string>;

TEST_CASE("a later assignment replaces the earlier one in place", "[units][environment]") {
  Strings env;
  set_environment(env, "A=1");
  set_environment(env, "B=2");
  set_environment(env, "A=3");
  set_environment(env, "AB=4");
  CHECK(env == Strings{"A=3", "B=2", "AB=4"});
  CHECK(find_environment(env, "A") == std::optional<std::string_view>("3"));
  CHECK_FALSE(find_environment(env, "C"));
}

TEST_CASE("variable names follow the shell's rule", "[units][environment]") {
  CHECK(is_valid_environment_name("SSHD_OPTS"));
  CHECK(is_valid_environment_name("_x1"));
  CHECK_FALSE(is_valid_environment_name("1x"));
  CHECK_FALSE(is_valid_environment_name("A-B"));
  CHECK(is_valid_environment_assignment("A="));
  CHECK_FALSE(is_valid_environment_assignment("A"));
}

TEST_CASE("environment files read like Debian's /etc/default files", "[units][environment]") {
  auto c = parse_environment_file(
      "# comment\n"
      "; comment\n"
      "SSHD_OPTS=\n"
      "  SPACED =  value with  spaces   \n"
      "SQ='single $quoted \\n'\n"
      "DQ=\"double \\\"quoted\\\" \\$x\"\n"
      "ESC=a\\ b\n"
      "CONT=one\\\ntwo\n"
      "not an assignment\n"
      "1BAD=x\n"
      "LAST=end");
  CHECK(c.assignments == Strings{"SSHD_OPTS=", "SPACED=value with  spaces", "SQ=single $quoted \\n",
                                 "DQ=double \"quoted\" $x", "ESC=a b", "CONT=onetwo", "LAST=end"});
  CHECK(c.invalid_lines == std::vector<unsigned>{10, 11});
}

// Unit names and specifier expansion.
#include "units/specifiers.h"

#include "tests/catch.h"

#include "units/unit_name.h"

using namespace usherd::units;

TEST_CASE("unit names split into prefix, instance and suffix", "[units][names]") {
  auto plain = parse_unit_name("ssh.socket");
  REQUIRE(plain);
  CHECK(plain->prefix == "ssh");
  CHECK(plain->suffix == "socket");
  CHECK_FALSE(plain->has_at);

  auto tmpl = parse_unit_name("ssh@.service");
  REQUIRE(tmpl);
  CHECK(tmpl->is_template());
  CHECK(tmpl->prefix == "ssh");

  auto inst = parse_unit_name("ssh@3-127.0.0.1:22-127.0.0.1:51234.service");
  REQUIRE(inst);
  CHECK(inst->is_instance());
  CHECK(inst->instance == "3-127.0.0.1:22-127.0.0.1:51234");
  CHECK(inst->template_name() == "ssh@.service");
  CHECK(tmpl->with_instance("x") == "ssh@x.service");
}

TEST_CASE("invalid unit names are rejected", "[units][names]") {
  auto name = GENERATE("", "noext", ".service", "a b.service", "@x.service", "foo.", "f/o.service",
                       "foo.SERVICE");
  CAPTURE(name);
  CHECK_FALSE(parse_unit_name(name));
}

TEST_CASE("unescaping turns dashes into slashes and resolves hex escapes", "[units][names]") {
  CHECK(unit_name_unescape("dev-sda1") == "dev/sda1");
  CHECK(unit_name_unescape("a\\x2db") == "a-b");
}

TEST_CASE("every specifier expands as systemd.unit describes", "[units][specifiers]") {
  auto unit = *parse_unit_name("git-daemon@7-a\\x2db.service");
  auto [spec, expected] = GENERATE(table<std::string, std::string>({
      {"%n", "git-daemon@7-a\\x2db.service"},
      {"%N", "git-daemon@7-a\\x2db"},
      {"%p", "git-daemon"},
      {"%P", "git/daemon"},
      {"%i", "7-a\\x2db"},
      {"%I", "7/a-b"},
      {"%j", "daemon"},
      {"%J", "daemon"},
      {"%f", "/7/a-b"},
      {"%t", "/run"},
      {"%%", "%"},
      {"x%iy", "x7-a\\x2dby"},
  }));
  CAPTURE(spec);
  auto out = expand_specifiers(spec, unit);
  REQUIRE(out);
  CHECK(*out == expected);
}

TEST_CASE("instance use is recorded so templates without it are copied", "[units][specifiers]") {
  auto unit = *parse_unit_name("a@.service");
  bool uses = false;
  REQUIRE(expand_specifiers("%t/%p %%i", unit, &uses));
  CHECK_FALSE(uses);
  REQUIRE(expand_specifiers("%t/%i", unit, &uses));
  CHECK(uses);
}

TEST_CASE("unknown specifiers and a trailing percent are errors", "[units][specifiers]") {
  auto unit = *parse_unit_name("a.service");
  CHECK_FALSE(expand_specifiers("%q", unit));
  CHECK_FALSE(expand_specifiers("50%", unit));
}

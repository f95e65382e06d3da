// ReadyLogMatcher: anchored at the start of a record, bounded in work, safe on big records.
#include "activation/ready_log.h"

#include <sys/socket.h>

#include <filesystem>
#include <fstream>

#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

TEST_CASE("a ready-log pattern counts only at the start of a record", "[activation][readylog]") {
  auto matcher = ReadyLogMatcher::compile("Accepted (password|publickey) for \\S+ from");
  REQUIRE(matcher);
  auto [record, expected] = GENERATE(table<std::string, bool>({
      {"Accepted password for alice from 192.0.2.7 port 51234 ssh2", true},
      {"Accepted publickey for bob from ::1 port 2 ssh2: ED25519", true},
      // A client smuggles a complete line through its user name: it sits inside a record
      // that begins with sshd's own words, so it must not count.
      {"Invalid user x\nAccepted password for root from 1.2.3.4 port 1 ssh2", false},
      {"Connection from 192.0.2.7: Accepted password for root from", false},
      {" Accepted password for alice from", false},
      {"", false},
  }));
  CHECK(matcher->matches_record(record) == expected);
}

TEST_CASE("a match beyond the first KiB of a record does not count", "[activation][readylog]") {
  auto matcher = ReadyLogMatcher::compile("x*READY");
  REQUIRE(matcher);
  CHECK(matcher->matches_record(std::string(1000, 'x') + "READY"));
  CHECK_FALSE(matcher->matches_record(std::string(kReadyLogWindow, 'x') + "READY"));
}

TEST_CASE("a 100 KB record is matched without trouble", "[activation][readylog]") {
  auto matcher = ReadyLogMatcher::compile("(a|b)*c");
  REQUIRE(matcher);
  std::string record(100 * 1024, 'a');
  CHECK(matcher->check(record) == ReadyLogMatcher::Outcome::no_match);
  record = "ab" + std::string(100 * 1024, 'c');
  CHECK(matcher->check(record) == ReadyLogMatcher::Outcome::matched);
}

TEST_CASE("a catastrophically backtracking pattern hits the match limit and does not match",
          "[activation][readylog]") {
  auto matcher = ReadyLogMatcher::compile("(a+)+$");
  REQUIRE(matcher);
  std::string record = std::string(40, 'a') + "!";
  CHECK(matcher->check(record) == ReadyLogMatcher::Outcome::limit_exceeded);
  CHECK_FALSE(matcher->matches_record(record));
  CHECK(matcher->matches_record(std::string(40, 'a')));
}

TEST_CASE("an invalid pattern is refused with PCRE2's reason", "[activation][readylog]") {
  auto matcher = ReadyLogMatcher::compile("Accepted (");
  REQUIRE_FALSE(matcher);
  CHECK(matcher.error().code == EINVAL);
  CHECK(matcher.error().message.find("offset 10") != std::string::npos);
}

TEST_CASE("a moved matcher keeps working and the moved-from one matches nothing",
          "[activation][readylog]") {
  auto compiled = ReadyLogMatcher::compile("ready");
  REQUIRE(compiled);
  ReadyLogMatcher moved = std::move(*compiled);
  CHECK(moved.matches_record("ready now"));
  CHECK(moved.pattern() == "ready");
  CHECK_FALSE(compiled->matches_record("ready now"));  // NOLINT(bugprone-use-after-move)
  auto other = ReadyLogMatcher::compile("other");
  REQUIRE(other);
  moved = std::move(*other);
  CHECK(moved.matches_record("other"));
  CHECK_FALSE(moved.matches_record("ready"));
}

TEST_CASE("each write into the record pipe arrives as one record", "[activation][readylog]") {
  auto pipe = make_record_pipe();
  REQUIRE(pipe);
  auto& [daemon_end, instance_end] = *pipe;
  CHECK((fcntl(daemon_end.get(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK((fcntl(instance_end.get(), F_GETFL) & O_NONBLOCK) == 0);
  CHECK((fcntl(daemon_end.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((fcntl(instance_end.get(), F_GETFD) & FD_CLOEXEC) != 0);
  std::string first = "first record\nwith a newline inside";
  std::string second = "second";
  REQUIRE(::write(instance_end.get(), first.data(), first.size()) ==
          static_cast<ssize_t>(first.size()));
  REQUIRE(::write(instance_end.get(), second.data(), second.size()) ==
          static_cast<ssize_t>(second.size()));
  char buffer[256];
  REQUIRE(wait_readable(daemon_end.get(), std::chrono::seconds(5)));
  CHECK(std::string(buffer, ::recv(daemon_end.get(), buffer, sizeof buffer, 0)) == first);
  CHECK(std::string(buffer, ::recv(daemon_end.get(), buffer, sizeof buffer, 0)) == second);
  CHECK(::recv(daemon_end.get(), buffer, sizeof buffer, 0) < 0);
  CHECK(errno == EAGAIN);
}

TEST_CASE("the shipped sshd readiness pattern matches every form of sshd's Accepted line",
          "[activation][readylog]") {
  // The X-ReadyLog= of examples/units/ssh@.service (the importer writes the same pattern).
  std::ifstream unit(std::filesystem::path(__FILE__).parent_path() /
                     "../../examples/units/ssh@.service");
  REQUIRE(unit);
  std::string line, pattern;
  while (std::getline(unit, line))
    if (line.rfind("X-ReadyLog=", 0) == 0) pattern = line.substr(11);
  REQUIRE_FALSE(pattern.empty());
  auto matcher = ReadyLogMatcher::compile(pattern);
  REQUIRE(matcher);
  auto [record, matches] = GENERATE(table<std::string, bool>({
      {"Accepted publickey for alice from 192.0.2.7 port 51234 ssh2: ED25519 SHA256:x\r\n", true},
      {"Accepted password for bob from 2001:db8::7 port 4022 ssh2\r\n", true},
      // A scoped link-local peer: sshd prints the zone after '%'.
      {"Accepted publickey for carol from fe80::1%eth0 port 51234 ssh2: RSA SHA256:y\r\n", true},
      {"Accepted keyboard-interactive/pam for dave from ::ffff:192.0.2.1 port 1 ssh2\r\n", true},
      {"Failed publickey for alice from 192.0.2.7 port 51234 ssh2\r\n", false},
      {"Invalid user Accepted publickey for x from 1.2.3.4 port 1 ssh2\r\n", false},
  }));
  CHECK(matcher->matches_record(record) == matches);
}

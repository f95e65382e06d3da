// Tests for policy/sshd_log: sshd 10's listener lines, byte for byte as sshd.c and srclimit.c
// print them, and log.c's rate limit.
#include "policy/sshd_log.h"

#include <string>
#include <vector>

#include "tests/catch.h"

using namespace std::chrono_literals;
using usherd::policy::DropReason;
using usherd::policy::Endpoint;
using usherd::policy::format_sshd_drop;
using usherd::policy::format_sshd_drops_suppressed;
using usherd::policy::format_sshd_penalty;
using usherd::policy::IpAddress;
using usherd::policy::PenaltyKind;
using usherd::policy::SshdLogRateLimit;
using usherd::policy::SshdPenaltyEvent;

namespace {

IpAddress ip(const std::string& text) {
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

}  // namespace

TEST_CASE("drop lines read as sshd's drop_connection() prints them", "[policy][sshd-log]") {
  const Endpoint peer{ip("198.51.100.9"), 40022};
  const Endpoint local{ip("127.0.0.1"), 22};
  CHECK(format_sshd_drop(31, peer, local, "Maxstartups") ==
        "drop connection #31 from [198.51.100.9]:40022 on [127.0.0.1]:22 Maxstartups");
  CHECK(format_sshd_drop(0, peer, local, "penalty: failed authentication") ==
        "drop connection #0 from [198.51.100.9]:40022 on [127.0.0.1]:22 penalty: failed "
        "authentication");
  // A dual-stack listener's IPv4 peer is shown as sshd shows it, unmapped.
  CHECK(format_sshd_drop(3, {ip("::ffff:192.0.2.7"), 5000}, {ip("::"), 2222},
                         "too many penalised addresses") ==
        "drop connection #3 from [192.0.2.7]:5000 on [::]:2222 too many penalised addresses");
  CHECK(format_sshd_drop(1, {ip("2001:db8::1"), 1}, {ip("2001:db8::2"), 22}, "Maxstartups") ==
        "drop connection #1 from [2001:db8::1]:1 on [2001:db8::2]:22 Maxstartups");
  CHECK(format_sshd_drops_suppressed("Maxstartups", 812) ==
        "Maxstartups logging rate-limited: additional 812 connections dropped");
  CHECK(format_sshd_drops_suppressed("PerSourcePenalties", 9) ==
        "PerSourcePenalties logging rate-limited: additional 9 connections dropped");
}

TEST_CASE("each drop usherd shares with sshd gets sshd's reason", "[policy][sshd-log]") {
  auto [reason, penalty, full,
        text] = GENERATE(table<DropReason, std::optional<PenaltyKind>, bool, std::string>({
      {DropReason::penalty, PenaltyKind::crash, false, "penalty: caused crash"},
      {DropReason::penalty, PenaltyKind::authfail, false, "penalty: failed authentication"},
      {DropReason::penalty, PenaltyKind::noauth, false,
       "penalty: connections without attempting authentication"},
      {DropReason::penalty, PenaltyKind::grace_exceeded, false, "penalty: exceeded LoginGraceTime"},
      {DropReason::penalty, PenaltyKind::invalid_user, false,
       "penalty: attempted authentication by invalid user"},
      {DropReason::penalty, PenaltyKind::refuse_connection, false,
       "penalty: connection prohibited by RefuseConnection"},
      {DropReason::penalty, std::nullopt, true, "too many penalised addresses"},
      {DropReason::startups_full, std::nullopt, false, "Maxstartups"},
      {DropReason::startups_early_drop, std::nullopt, false, "Maxstartups"},
      {DropReason::per_source_startups, std::nullopt, false, "Maxstartups"},
      // sshd would have refused each of these at once, as Maxstartups.
      {DropReason::queue_full, std::nullopt, false, "Maxstartups"},
      {DropReason::queue_early_drop, std::nullopt, false, "Maxstartups"},
      {DropReason::queue_timeout, std::nullopt, false, "Maxstartups"},
  }));
  auto said = usherd::policy::sshd_drop_reason(reason, penalty, full);
  REQUIRE(said);
  CHECK(*said == text);
}

TEST_CASE("drops sshd never makes have no sshd line", "[policy][sshd-log]") {
  auto reason = GENERATE(DropReason::acl, DropReason::rate, DropReason::max_connections,
                         DropReason::per_source_connections, DropReason::spawn_failed);
  CHECK_FALSE(usherd::policy::sshd_drop_reason(reason));
}

TEST_CASE("penalty lines read as srclimit_penalise() prints them", "[policy][sshd-log]") {
  const auto peer = ip("192.0.2.7");
  CHECK(format_sshd_penalty(SshdPenaltyEvent::new_active, peer, 32, 90s, PenaltyKind::crash) ==
        "srclimit_penalise: ipv4: new 192.0.2.7/32 active penalty of 90.000 seconds for "
        "penalty: caused crash");
  CHECK(
      format_sshd_penalty(SshdPenaltyEvent::new_deferred, peer, 32, 0.5s, PenaltyKind::authfail) ==
      "srclimit_penalise: ipv4: new 192.0.2.7/32 deferred penalty of 0.500 seconds for "
      "penalty: failed authentication");
  // addr_masklen_ntop() prints the peer itself with the block's length, not the network.
  CHECK(format_sshd_penalty(SshdPenaltyEvent::activating, peer, 24,
                            std::chrono::duration<double>(19.25), PenaltyKind::noauth) ==
        "srclimit_penalise: 192.0.2.7/24: activating ipv4 penalty of 19.250 seconds for "
        "penalty: connections without attempting authentication");
  CHECK(format_sshd_penalty(SshdPenaltyEvent::table_full, ip("2001:db8::5"), 64, 10s,
                            PenaltyKind::grace_exceeded) ==
        "srclimit_penalise: ipv6 penalty table full, cannot penalise 2001:db8::5/64 for "
        "penalty: exceeded LoginGraceTime");
  CHECK(format_sshd_penalty(SshdPenaltyEvent::new_active, ip("::ffff:192.0.2.7"), 32, 20s,
                            PenaltyKind::invalid_user) ==
        "srclimit_penalise: ipv4: new 192.0.2.7/32 active penalty of 20.000 seconds for "
        "penalty: attempted authentication by invalid user");
}

TEST_CASE("sshd's log rate limit lets a burst through, then one line a period",
          "[policy][sshd-log]") {
  // log_ratelimit_init(&ratelimit_maxstartups, 4, 60, 20, 5*60), driven second by second at
  // ten drops a second.
  SshdLogRateLimit limit = SshdLogRateLimit::for_max_startups();
  std::vector<bool> logged;
  for (int i = 0; i < 5; ++i) logged.push_back(!limit.event(100).suppress);
  // Accumulated 1, 2, 3 are under the threshold of 4; the 4th starts rate limiting.
  CHECK(logged == std::vector<bool>{true, true, true, false, false});
  unsigned logged_later = 0;
  unsigned reported = 0;
  for (std::int64_t now = 101; now <= 100 + 300; ++now) {
    for (int i = 0; i < 10; ++i) {
      auto verdict = limit.event(now);
      logged_later += !verdict.suppress;
      reported += verdict.dropped;
    }
  }
  // log_every: one line (with the count suppressed so far) five minutes after it started.
  CHECK(logged_later == 1);
  CHECK(reported == 2 + 299 * 10);
}

TEST_CASE("sshd's log rate limit ends after its hysteresis and reports the rest",
          "[policy][sshd-log]") {
  SshdLogRateLimit limit = SshdLogRateLimit::for_penalties();  // 8, 60, 30, 120
  for (int i = 0; i < 7; ++i) CHECK_FALSE(limit.event(10).suppress);
  CHECK(limit.event(10).suppress);  // 8th: rate limiting starts, counted as suppressed
  CHECK(limit.event(10).suppress);
  // Quiet for longer than the accumulation lasts: under the threshold, in hysteresis.
  auto quiet = limit.event(30);
  CHECK(quiet.suppress);
  CHECK(quiet.dropped == 0);
  // Past the hysteresis (30 s after it began): logging resumes and reports what it held.
  auto resumed = limit.event(61);
  CHECK_FALSE(resumed.suppress);
  CHECK(resumed.dropped == 3);
  CHECK_FALSE(limit.event(62).suppress);
}

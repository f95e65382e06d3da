// Tests for policy/penalty_box: OpenSSH's penalty accumulation, expiry and overflow, with time
// moved forward by hand.
#include "policy/penalty_box.h"

#include "tests/catch.h"

using namespace std::chrono_literals;
using usherd::policy::Cidr;
using usherd::policy::IpAddress;
using usherd::policy::NetBlockSize;
using usherd::policy::PenaltyBox;
using usherd::policy::PenaltyConfig;
using usherd::policy::PenaltyKind;
using usherd::policy::PenaltyOverflow;
using usherd::policy::PenaltyRecord;
using usherd::policy::TimePoint;

namespace {

const TimePoint t0 = TimePoint() + 10000s;

IpAddress ip(const char* text) {
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

PenaltyBox box_with(const char* penalties, NetBlockSize size = {}, std::vector<Cidr> exempt = {}) {
  auto config = PenaltyConfig::parse(penalties);
  REQUIRE(config.ok());
  PenaltyBox box;
  box.configure(*config, size, std::move(exempt));
  return box;
}

}  // namespace

TEST_CASE("a penalty above min refuses its block at once until it expires", "[policy][penalty]") {
  auto box = box_with("crash:90s min:15s");
  const auto peer = ip("198.51.100.9");
  CHECK_FALSE(box.is_refused(peer, t0));
  CHECK(box.penalise(peer, PenaltyKind::crash, t0) == PenaltyRecord::active);
  CHECK(box.is_refused(peer, t0));
  CHECK(box.is_refused(peer, t0 + 89s));
  CHECK_FALSE(box.is_refused(peer, t0 + 90s));
  CHECK(box.size(usherd::policy::Family::v4) == 0);
}

TEST_CASE("a penalty at or below min is recorded but does not refuse", "[policy][penalty]") {
  auto secs = GENERATE(1, 10, 15);
  auto box = box_with(("noauth:" + std::to_string(secs) + " min:15s").c_str());
  const auto peer = ip("198.51.100.9");
  CHECK(box.penalise(peer, PenaltyKind::noauth, t0) == PenaltyRecord::pending);
  CHECK_FALSE(box.is_refused(peer, t0));
  CHECK(box.size(usherd::policy::Family::v4) == 1);
  CHECK(box.active_penalties(t0).empty());
}

TEST_CASE("penalties accumulate until the total ahead exceeds min", "[policy][penalty]") {
  // noauth 10s, min 15s: first at t0 expires t0+10 (pending); the second at t0+2 makes it
  // t0+20, which is 18s ahead > 15 -> active.
  auto box = box_with("noauth:10s min:15s max:10m");
  const auto peer = ip("203.0.113.4");
  CHECK(box.penalise(peer, PenaltyKind::noauth, t0) == PenaltyRecord::pending);
  CHECK(box.penalise(peer, PenaltyKind::noauth, t0 + 2s) == PenaltyRecord::active);
  CHECK(box.is_refused(peer, t0 + 2s));
  CHECK(box.is_refused(peer, t0 + 19s));
  CHECK_FALSE(box.is_refused(peer, t0 + 20s));
}

TEST_CASE("accumulation that stays within min never activates", "[policy][penalty]") {
  // Each 5s penalty lands after the previous expired: every one is a new entry.
  auto box = box_with("noauth:5s min:15s");
  const auto peer = ip("203.0.113.4");
  for (int i = 0; i < 10; ++i) {
    const auto now = t0 + std::chrono::seconds(6 * i);
    CHECK(box.penalise(peer, PenaltyKind::noauth, now) == PenaltyRecord::pending);
    CHECK_FALSE(box.is_refused(peer, now));
  }
}

TEST_CASE("accumulated penalties are capped at now + max", "[policy][penalty]") {
  auto box = box_with("crash:90s max:2m min:15s");
  const auto peer = ip("203.0.113.4");
  box.penalise(peer, PenaltyKind::crash, t0);
  box.penalise(peer, PenaltyKind::crash, t0 + 1s);  // 90+90 -> capped at t0+1+120
  box.penalise(peer, PenaltyKind::crash, t0 + 2s);  // capped at t0+2+120
  auto active = box.active_penalties(t0 + 2s);
  REQUIRE(active.size() == 1);
  CHECK(active[0].expiry == t0 + 122s);
  CHECK(active[0].reason == PenaltyKind::crash);
  CHECK(box.is_refused(peer, t0 + 121s));
  CHECK_FALSE(box.is_refused(peer, t0 + 122s));
}

TEST_CASE("a new penalty is not capped by max, as in OpenSSH", "[policy][penalty]") {
  auto box = box_with("crash:1h max:10m min:15s");
  const auto peer = ip("203.0.113.4");
  box.penalise(peer, PenaltyKind::crash, t0);
  CHECK(box.is_refused(peer, t0 + 59min));
}

TEST_CASE("penalties apply to the whole source block", "[policy][penalty]") {
  auto box = box_with("crash:90s", NetBlockSize{24, 64});
  box.penalise(ip("192.0.2.7"), PenaltyKind::crash, t0);
  box.penalise(ip("2001:db8:0:1::5"), PenaltyKind::crash, t0);
  CHECK(box.is_refused(ip("192.0.2.200"), t0 + 1s));
  CHECK_FALSE(box.is_refused(ip("192.0.3.1"), t0 + 1s));
  CHECK(box.is_refused(ip("2001:db8:0:1:ffff::1"), t0 + 1s));
  CHECK_FALSE(box.is_refused(ip("2001:db8:0:2::5"), t0 + 1s));
  auto active = box.active_penalties(t0 + 1s);
  REQUIRE(active.size() == 2);
  CHECK(active[0].block.to_string() == "192.0.2.0/24");
  CHECK(active[1].block.to_string() == "2001:db8:0:1::/64");
}

TEST_CASE("exempt sources are neither penalised nor refused", "[policy][penalty]") {
  auto box = box_with("crash:90s overflow:deny-all max-sources4:0", NetBlockSize{},
                      {*Cidr::parse("10.0.0.0/8")});
  const auto admin = ip("10.1.2.3");
  CHECK(box.penalise(admin, PenaltyKind::crash, t0) == PenaltyRecord::ignored);
  CHECK_FALSE(box.is_refused(admin, t0));
  CHECK(box.is_refused(ip("192.0.2.1"), t0));  // deny-all with a zero-size table
}

TEST_CASE("disabled penalties record and refuse nothing", "[policy][penalty]") {
  auto box = box_with("no");
  const auto peer = ip("192.0.2.1");
  CHECK(box.penalise(peer, PenaltyKind::crash, t0) == PenaltyRecord::ignored);
  CHECK_FALSE(box.is_refused(peer, t0));
  CHECK(box.size(usherd::policy::Family::v4) == 0);
}

TEST_CASE("a zero penalty is ignored", "[policy][penalty]") {
  auto box = box_with("noauth:0");
  CHECK(box.penalise(ip("192.0.2.1"), PenaltyKind::noauth, t0) == PenaltyRecord::ignored);
}

TEST_CASE("a full permissive table takes a new block and evicts the soonest to expire",
          "[policy][penalty][overflow]") {
  auto box = box_with("noauth:10s min:15s max-sources4:2 overflow:permissive");
  const auto a = ip("192.0.2.1"), b = ip("192.0.2.2"), c = ip("192.0.2.3");
  CHECK(box.penalise(a, PenaltyKind::noauth, t0) == PenaltyRecord::pending);       // until +10
  CHECK(box.penalise(b, PenaltyKind::noauth, t0 + 2s) == PenaltyRecord::pending);  // until +12
  CHECK(box.penalise(a, PenaltyKind::noauth, t0 + 3s) == PenaltyRecord::active);   // until +20
  // c goes in; b, the soonest to expire, makes room for it.
  CHECK(box.penalise(c, PenaltyKind::noauth, t0 + 4s) == PenaltyRecord::pending);
  CHECK(box.size(usherd::policy::Family::v4) == 2);
  CHECK(box.is_refused(a, t0 + 4s));
  // b anew (until +15) evicts c (until +14); a, the last to expire, stays throughout.
  CHECK(box.penalise(b, PenaltyKind::noauth, t0 + 5s) == PenaltyRecord::pending);
  CHECK(box.size(usherd::policy::Family::v4) == 2);
  CHECK(box.is_refused(a, t0 + 5s));
  CHECK_FALSE(box.is_refused(ip("192.0.2.9"), t0 + 5s));  // permissive
  // IPv6 has its own table.
  CHECK(box.penalise(ip("2001:db8::1"), PenaltyKind::noauth, t0) == PenaltyRecord::pending);
  CHECK(box.size(usherd::policy::Family::v4) == 2);
}

TEST_CASE("a new block that would itself expire soonest is the one evicted",
          "[policy][penalty][overflow]") {
  auto box = box_with("noauth:10s crash:90s max-sources4:1 overflow:permissive");
  CHECK(box.penalise(ip("192.0.2.1"), PenaltyKind::crash, t0) == PenaltyRecord::active);
  CHECK(box.penalise(ip("192.0.2.2"), PenaltyKind::noauth, t0) == PenaltyRecord::table_full);
  CHECK(box.is_refused(ip("192.0.2.1"), t0 + 1s));
  CHECK_FALSE(box.is_refused(ip("192.0.2.2"), t0 + 1s));
}

TEST_CASE("a full deny-all table does not accumulate an existing entry",
          "[policy][penalty][overflow]") {
  auto box = box_with("noauth:10s min:15s max-sources4:1 overflow:deny-all");
  const auto a = ip("192.0.2.1");
  CHECK(box.penalise(a, PenaltyKind::noauth, t0) == PenaltyRecord::pending);
  CHECK(box.penalise(a, PenaltyKind::noauth, t0 + 1s) == PenaltyRecord::table_full);
  // Still the first penalty alone: gone at +10s, where an accumulated one would last to +20s.
  CHECK_FALSE(box.is_refused(ip("198.51.100.1"), t0 + 10s));
  CHECK(box.size(usherd::policy::Family::v4) == 0);
}

TEST_CASE("overflow deny-all refuses the whole family while its table is full",
          "[policy][penalty][overflow]") {
  auto [overflow4, overflow6, v4_refused, v6_refused] =
      GENERATE(table<std::string, std::string, bool, bool>({
          {"deny-all", "permissive", true, false},
          {"permissive", "deny-all", false, false},
          {"deny-all", "deny-all", true, false},
      }));
  auto box = box_with(
      ("crash:90s max-sources4:1 max-sources6:1 overflow:" + overflow4 + " overflow6:" + overflow6)
          .c_str());
  box.penalise(ip("192.0.2.1"), PenaltyKind::crash, t0);
  CHECK(box.is_refused(ip("198.51.100.1"), t0 + 1s) == v4_refused);
  CHECK(box.is_refused(ip("2001:db8::1"), t0 + 1s) == v6_refused);
  // Once the entry expires the family is admitted again.
  CHECK_FALSE(box.is_refused(ip("198.51.100.1"), t0 + 90s));
}

TEST_CASE("the IPv6 table refuses IPv6 under deny-all once full", "[policy][penalty][overflow]") {
  auto box = box_with("noauth:1s max-sources6:1 overflow6:deny-all");
  box.penalise(ip("2001:db8::1"), PenaltyKind::noauth, t0);
  CHECK(box.is_refused(ip("2001:db8:ffff::9"), t0));
  CHECK_FALSE(box.is_refused(ip("192.0.2.1"), t0));
  CHECK_FALSE(box.is_refused(ip("2001:db8:ffff::9"), t0 + 1s));
}

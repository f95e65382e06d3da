// xinetd's address forms (addr.c) as networks, and the cut that turns only_from minus
// no_access into an IPAddressAllow= list.
#include "tests/catch.h"

#include "importer/access_list.h"
#include "test_system.h"

using namespace usherd::importer;
using usherd::policy::Cidr;
using usherd::policy::IpAddress;

namespace {

std::string networks_of(const std::string& text) {
  testing::TestSystem system;
  auto entry = parse_xinetd_address(text, system);
  if (!entry) return "error";
  if (!entry->unexpressible.empty()) return "unexpressible";
  if (!entry->skipped.empty()) return "skipped";
  return join_networks(entry->networks);
}

std::vector<Cidr> cidrs(std::initializer_list<const char*> list) {
  std::vector<Cidr> out;
  for (const char* c : list) out.push_back(*Cidr::parse(c));
  return out;
}

}  // namespace

TEST_CASE("xinetd address forms become the networks xinetd matches", "[importer][access]") {
  auto [text, expected] = GENERATE(table<std::string, std::string>({
      {"192.0.2.7", "192.0.2.7/32"},
      {"128.138.12.0", "128.138.12.0/24"},  // trailing zero octets are wildcards
      {"10.0.0.0", "10.0.0.0/8"},
      {"10.20.0.0", "10.20.0.0/16"},
      {"0.0.0.0", "0.0.0.0/0"},            // every IPv4 address
      {"127.1", "127.0.0.1/32"},           // inet_aton's short forms, as getaddrinfo takes them
      {"2001:db8::5", "2001:db8::5/128"},  // IPv6: one host, no wildcards
      {"192.0.2.0/25", "192.0.2.0/25"},
      {"2001:db8::/32", "2001:db8::/32"},
      {"128.138.{200,201}", "128.138.200.0/24 128.138.201.0/24"},
      {"10.{1,2}", "10.1.0.0/16 10.2.0.0/16"},
      {"192.0.2.{1,9}", "192.0.2.1/32 192.0.2.9/32"},
      {"testnet", "198.51.100.0/24"},  // /etc/networks (the test's)
      {"host.example.org", "unexpressible"},
      {".example.org", "unexpressible"},
      {"192.0.2.1,192.0.2.2", "error"},  // xinetd: "remove the comma"
      {"128.138.{200,,201}", "error"},
      {"128.138{1,2}", "error"},
      // What no parser of xinetd's takes, xinetd logs and skips (addrlist_op()).
      {"192.0.2.0/33", "skipped"},
      {"2001:db8::/129", "skipped"},
      {"12:34:zz::1", "skipped"},
      {"host name!", "skipped"},
      {"#", "skipped"},
      {"#office", "skipped"},
  }));
  CAPTURE(text);
  CHECK(networks_of(text) == expected);
}

TEST_CASE("subtracting a network cuts it out of a larger one", "[importer][access]") {
  auto left = subtract_networks(cidrs({"192.0.2.0/24"}), cidrs({"192.0.2.128/25"}));
  REQUIRE(left);
  CHECK(join_networks(*left) == "192.0.2.0/25");

  auto host = subtract_networks(cidrs({"10.0.0.0/30"}), cidrs({"10.0.0.1"}));
  REQUIRE(host);
  CHECK(join_networks(*host) == "10.0.0.2/31 10.0.0.0/32");

  // Every address of the result is in from and in none of the holes, and no address of from
  // outside the holes is lost: checked exhaustively over a /24.
  auto from = cidrs({"198.51.100.0/24"});
  auto holes = cidrs({"198.51.100.7", "198.51.100.64/27", "198.51.100.200/30", "203.0.113.0/24"});
  auto result = subtract_networks(from, holes);
  REQUIRE(result);
  for (unsigned i = 0; i < 256; ++i) {
    IpAddress a = IpAddress::from_v4(0xC6336400u | i);  // 198.51.100.i
    bool in_hole = any_contains(holes, a);
    CAPTURE(a.to_string());
    CHECK(any_contains(*result, a) == !in_hole);
  }
}

TEST_CASE("a hole that covers the network removes it; other families are untouched",
          "[importer][access]") {
  auto r = subtract_networks(cidrs({"192.0.2.0/25", "2001:db8::/64"}), cidrs({"192.0.2.0/24"}));
  REQUIRE(r);
  CHECK(join_networks(*r) == "2001:db8::/64");
  auto v6 = subtract_networks(cidrs({"2001:db8::/126"}), cidrs({"2001:db8::3"}));
  REQUIRE(v6);
  CHECK(join_networks(*v6) == "2001:db8::/127 2001:db8::2/128");
}

TEST_CASE("a cut that would need too many networks is refused", "[importer][access]") {
  std::vector<Cidr> holes;
  for (unsigned i = 0; i < 64; ++i)
    holes.emplace_back(IpAddress::from_v6({0x20, 0x01, 0x0d, 0xb8, static_cast<std::uint8_t>(4 * i),
                                           0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}),
                       128);
  auto r = subtract_networks(cidrs({"::/0"}), holes, 512);
  CHECK_FALSE(r);
}

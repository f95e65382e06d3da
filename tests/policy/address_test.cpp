// Tests for policy/address: IpAddress, Cidr, the IPAddressAllow= words, NetBlockSize.
#include "policy/address.h"

#include "tests/catch.h"

#include <string>
#include <unordered_set>

using usherd::policy::Cidr;
using usherd::policy::IpAddress;
using usherd::policy::NetBlockSize;

namespace {

IpAddress ip(const char* text) {
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

std::string joined(const std::vector<Cidr>& list) {
  std::string text;
  for (const auto& cidr : list) text += (text.empty() ? "" : " ") + cidr.to_string();
  return text;
}

}  // namespace

TEST_CASE("IP addresses round-trip through their canonical text", "[policy][address]") {
  auto [text, canonical, v4] = GENERATE(table<std::string, std::string, bool>({
      {"192.0.2.1", "192.0.2.1", true},
      {"0.0.0.0", "0.0.0.0", true},
      {"255.255.255.255", "255.255.255.255", true},
      {"::1", "::1", false},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", false},
      {"::ffff:192.0.2.7", "::ffff:192.0.2.7", false},
      {"fe80::1:2", "fe80::1:2", false},
  }));
  auto parsed = IpAddress::parse(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->to_string() == canonical);
  CHECK(parsed->is_v4() == v4);
  CHECK(parsed->is_v6() == !v4);
}

TEST_CASE("malformed IP addresses are rejected with the text quoted", "[policy][address]") {
  auto text = GENERATE(as<std::string>{}, "", "10.1", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "[::1]",
                       "fe80::1%eth0", "::g", "localhost");
  auto parsed = IpAddress::parse(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error() == "invalid IP address \"" + text + "\"");
}

TEST_CASE("from_v4 takes host order and from_v6 takes network bytes", "[policy][address]") {
  CHECK(IpAddress::from_v4(0x7f000001).to_string() == "127.0.0.1");
  CHECK(IpAddress::from_v4(0xc0000207) == ip("192.0.2.7"));
  CHECK(ip("198.51.100.9").v4_host_order() == 0xc6336409u);
  IpAddress::Bytes bytes{};
  bytes[0] = 0x20;
  bytes[1] = 0x01;
  bytes[2] = 0x0d;
  bytes[3] = 0xb8;
  bytes[15] = 0x05;
  CHECK(IpAddress::from_v6(bytes) == ip("2001:db8::5"));
}

TEST_CASE("IPv4-mapped IPv6 addresses unmap to IPv4 and others stay as they are",
          "[policy][address]") {
  CHECK(ip("::ffff:192.0.2.7").is_v4_mapped());
  CHECK(ip("::ffff:192.0.2.7").unmapped() == ip("192.0.2.7"));
  CHECK_FALSE(ip("::192.0.2.7").is_v4_mapped());
  CHECK(ip("::192.0.2.7").unmapped() == ip("::192.0.2.7"));
  CHECK(ip("2001:db8::1").unmapped() == ip("2001:db8::1"));
  CHECK_FALSE(ip("192.0.2.7").is_v4_mapped());
  CHECK(ip("192.0.2.7").unmapped() == ip("192.0.2.7"));
}

TEST_CASE("an IPv4 address and its mapped form are different keys", "[policy][address]") {
  CHECK(ip("192.0.2.7") != ip("::ffff:192.0.2.7"));
  CHECK(ip("0.0.0.0") != ip("::"));
  std::unordered_set<IpAddress> set{ip("0.0.0.0"), ip("::"), ip("192.0.2.7")};
  CHECK(set.size() == 3);
  CHECK(set.count(ip("192.0.2.7")) == 1);
}

TEST_CASE("masking keeps exactly the prefix bits", "[policy][address]") {
  auto [address, length, expected] = GENERATE(table<std::string, unsigned, std::string>({
      {"192.0.2.255", 24, "192.0.2.0"},
      {"192.0.2.255", 25, "192.0.2.128"},
      {"192.0.2.255", 32, "192.0.2.255"},
      {"192.0.2.255", 0, "0.0.0.0"},
      {"192.0.2.255", 99, "192.0.2.255"},
      {"10.255.255.255", 9, "10.128.0.0"},
      {"2001:db8:ffff:ffff::1", 48, "2001:db8:ffff::"},
      {"2001:db8:ffff:ffff::1", 64, "2001:db8:ffff:ffff::"},
      {"2001:db8:ffff:ffff::1", 127, "2001:db8:ffff:ffff::"},
      {"2001:db8:ffff:ffff::1", 128, "2001:db8:ffff:ffff::1"},
  }));
  CHECK(ip(address.c_str()).masked(length).to_string() == expected);
}

TEST_CASE("CIDRs parse, normalise host bits and test membership", "[policy][address][cidr]") {
  auto [text, canonical, inside, outside] =
      GENERATE(table<std::string, std::string, std::string, std::string>({
          {"192.0.2.0/24", "192.0.2.0/24", "192.0.2.200", "192.0.3.1"},
          {"192.0.2.77/24", "192.0.2.0/24", "192.0.2.1", "198.51.100.1"},
          {"192.0.2.7", "192.0.2.7/32", "192.0.2.7", "192.0.2.8"},
          {"0.0.0.0/0", "0.0.0.0/0", "203.0.113.5", "::1"},
          {"::1/128", "::1/128", "::1", "::2"},
          {"::1", "::1/128", "::1", "127.0.0.1"},
          {"2001:db8::/32", "2001:db8::/32", "2001:db8:1234::1", "2001:db9::1"},
          {"::/0", "::/0", "2001:db8::1", "192.0.2.1"},
          {"::ffff:0:0/96", "::ffff:0.0.0.0/96", "::ffff:192.0.2.1", "192.0.2.1"},
      }));
  auto cidr = Cidr::parse(text);
  REQUIRE(cidr.ok());
  CHECK(cidr->to_string() == canonical);
  CHECK(cidr->contains(ip(inside.c_str())));
  CHECK_FALSE(cidr->contains(ip(outside.c_str())));
}

TEST_CASE("malformed CIDRs give golden errors", "[policy][address][cidr]") {
  auto [text, error] = GENERATE(table<std::string, std::string>({
      {"192.0.2.0/33", "invalid prefix length \"33\" in \"192.0.2.0/33\" (at most 32)"},
      {"::/129", "invalid prefix length \"129\" in \"::/129\" (at most 128)"},
      {"192.0.2.0/", "invalid prefix length \"\" in \"192.0.2.0/\" (at most 32)"},
      {"192.0.2.0/-1", "invalid prefix length \"-1\" in \"192.0.2.0/-1\" (at most 32)"},
      {"192.0.2.0/2a", "invalid prefix length \"2a\" in \"192.0.2.0/2a\" (at most 32)"},
      {"192.0.2/24", "invalid IP address \"192.0.2\""},
      {"/24", "invalid IP address \"\""},
  }));
  auto cidr = Cidr::parse(text);
  REQUIRE_FALSE(cidr.ok());
  CHECK(cidr.error() == error);
}

TEST_CASE("systemd's address words expand to one network per family", "[policy][address][cidr]") {
  auto [word, expansion] = GENERATE(table<std::string, std::string>({
      {"any", "0.0.0.0/0 ::/0"},
      {"localhost", "127.0.0.0/8 ::1/128"},
      {"link-local", "169.254.0.0/16 fe80::/64"},
      {"multicast", "224.0.0.0/4 ff00::/8"},
      {"10.0.0.0/8", "10.0.0.0/8"},
  }));
  auto list = Cidr::parse_list_element(word);
  REQUIRE(list.ok());
  CHECK(joined(*list) == expansion);
}

TEST_CASE("address lists split on spaces and commas and stop at the first bad element",
          "[policy][address][cidr]") {
  auto list = usherd::policy::parse_cidr_list("  localhost, 192.0.2.0/24\t2001:db8::/32 ,");
  REQUIRE(list.ok());
  CHECK(joined(*list) == "127.0.0.0/8 ::1/128 192.0.2.0/24 2001:db8::/32");
  CHECK(usherd::policy::any_contains(*list, ip("2001:db8::9")));
  CHECK_FALSE(usherd::policy::any_contains(*list, ip("198.51.100.1")));

  auto empty = usherd::policy::parse_cidr_list("   ");
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  auto bad = usherd::policy::parse_cidr_list("localhost everything");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "invalid IP address \"everything\"");
}

TEST_CASE("PerSourceNetBlockSize parses v4 or v4:v6 like sshd", "[policy][address][netblock]") {
  auto [text, v4, v6] = GENERATE(table<std::string, unsigned, unsigned>({
      {"32:128", 32, 128},
      {"24", 24, 128},
      {"24:64", 24, 64},
      {"0:0", 0, 0},
  }));
  auto size = NetBlockSize::parse(text);
  REQUIRE(size.ok());
  CHECK(size->v4 == v4);
  CHECK(size->v6 == v6);
  CHECK(size->to_string() == std::to_string(v4) + ":" + std::to_string(v6));
}

TEST_CASE("bad PerSourceNetBlockSize values give golden errors", "[policy][address][netblock]") {
  auto [text, error] = GENERATE(table<std::string, std::string>({
      {"33", "IPv4 prefix length must be at most 32, got 33"},
      {"24:129", "IPv6 prefix length must be at most 128, got 129"},
      {"", "expected v4[:v6] prefix lengths, got \"\""},
      {"24:", "expected v4[:v6] prefix lengths, got \"24:\""},
      {"x:64", "expected v4[:v6] prefix lengths, got \"x:64\""},
      {"24:64:1", "expected v4[:v6] prefix lengths, got \"24:64:1\""},
  }));
  auto size = NetBlockSize::parse(text);
  REQUIRE_FALSE(size.ok());
  CHECK(size.error() == error);
}

TEST_CASE("mask_to_block uses the block size of the address's family", "[policy][address]") {
  const NetBlockSize size{24, 48};
  CHECK(mask_to_block(ip("192.0.2.77"), size) == ip("192.0.2.0"));
  CHECK(mask_to_block(ip("2001:db8:1:2:3::4"), size) == ip("2001:db8:1::"));
  CHECK(mask_to_block(ip("192.0.2.77"), NetBlockSize{}) == ip("192.0.2.77"));
}

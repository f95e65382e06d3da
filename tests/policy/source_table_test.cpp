// Tests for policy/source_table: counts per source that vanish at zero.
#include "policy/source_table.h"

#include "tests/catch.h"

using usherd::policy::IpAddress;
using usherd::policy::SourceTable;

TEST_CASE("source table counts per source and forgets a source at zero", "[policy][sources]") {
  const auto a = *IpAddress::parse("192.0.2.1");
  const auto b = *IpAddress::parse("2001:db8::1");
  SourceTable table;
  CHECK(table.count(a) == 0);
  table.add(a);
  table.add(a);
  table.add(b);
  CHECK(table.count(a) == 2);
  CHECK(table.count(b) == 1);
  CHECK(table.size() == 2);
  CHECK(table.remove(a));
  CHECK(table.count(a) == 1);
  CHECK(table.remove(a));
  CHECK(table.count(a) == 0);
  CHECK(table.size() == 1);
  CHECK_FALSE(table.remove(a));
  CHECK(table.count(a) == 0);
}

// The one Catch2 include of the tests: Catch2 2.13 (Debian 12's catch2) or Catch2 3
// (Debian 13's), whichever tests/CMakeLists.txt found; it says which in
// USHERD_CATCH2_MAJOR, so the headers match the library linked, not whatever else is
// installed. The tests are written against the subset both versions share: TEST_CASE,
// SECTION, CHECK/REQUIRE, INFO/CAPTURE/WARN, GENERATE with range/values/take/random, and
// Approx, which Catch2 3 moved into namespace Catch (brought back here).
#pragma once

#if USHERD_CATCH2_MAJOR == 2
#include <catch2/catch.hpp>
#elif USHERD_CATCH2_MAJOR == 3
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators_all.hpp>
using Catch::Approx;
#else
#error "USHERD_CATCH2_MAJOR must be 2 or 3 (set by tests/CMakeLists.txt)"
#endif

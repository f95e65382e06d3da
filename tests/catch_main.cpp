// The one Catch2 main shared by every test executable, the same for both Catch2 versions:
// with CATCH_CONFIG_RUNNER, Catch2 2 compiles its implementation into this file and leaves
// main to us; Catch2 3 is a compiled library (the macro means nothing to it) whose Session
// lives in its own header.
#define CATCH_CONFIG_RUNNER
#include "tests/catch.h"

#if USHERD_CATCH2_MAJOR == 3
#include <catch2/catch_session.hpp>
#endif

int main(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}

#include "supervisor/drop_log.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include "tests/catch.h"

#include <sstream>

using usherd::supervisor::DropLog;

TEST_CASE("drop log writes a burst in full, then one summary per window", "[supervisor][drop]") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(captured);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  spdlog::default_logger()->set_pattern("%v");

  DropLog log(3, std::chrono::seconds(10));
  auto t0 = DropLog::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 100; ++i)
    log.drop(t0 + std::chrono::milliseconds(i), "drop connection " + std::to_string(i), "x.socket");
  log.flush(t0 + std::chrono::seconds(5), "x.socket");  // window still open: nothing yet
  std::string before = captured.str();
  log.flush(t0 + std::chrono::seconds(11), "x.socket");
  std::string after = captured.str();
  spdlog::set_default_logger(previous);

  CHECK(before.find("drop connection 0\n") != std::string::npos);
  CHECK(before.find("drop connection 2\n") != std::string::npos);
  CHECK(before.find("drop connection 3\n") == std::string::npos);
  CHECK(before.find("rate-limited") == std::string::npos);
  CHECK(after.find("drop socket=x.socket logging rate-limited: 97 more connections dropped") !=
        std::string::npos);
}

TEST_CASE("output records beyond the burst are counted, not logged, until the window closes",
          "[supervisor][drop]") {
  DropLog log(2, std::chrono::seconds(10), "output records suppressed");
  auto t0 = DropLog::Clock::time_point{} + std::chrono::hours(1);
  CHECK(log.allow(t0, "x.socket"));
  CHECK(log.allow(t0, "x.socket"));
  CHECK_FALSE(log.allow(t0 + std::chrono::seconds(1), "x.socket"));
  CHECK_FALSE(log.allow(t0 + std::chrono::seconds(9), "x.socket"));
  CHECK(log.allow(t0 + std::chrono::seconds(11), "x.socket"));  // a new window
}

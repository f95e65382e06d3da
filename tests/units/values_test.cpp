// Value syntaxes: booleans, time spans, sizes, modes, signals, escapes and word splitting.
#include "units/values.h"

#include <csignal>

#include "tests/catch.h"

using namespace usherd::units;
using namespace std::chrono_literals;

TEST_CASE("booleans accept every word systemd accepts and nothing else", "[units][values]") {
  auto [text, expected] = GENERATE(table<std::string, std::optional<bool>>({
      {"yes", true},
      {"YES", true},
      {"true", true},
      {"on", true},
      {"1", true},
      {"y", true},
      {"no", false},
      {"False", false},
      {"off", false},
      {"0", false},
      {"n", false},
      {"maybe", std::nullopt},
      {"", std::nullopt},
      {"2", std::nullopt},
      {"yes ", std::nullopt},
  }));
  CAPTURE(text);
  CHECK(parse_boolean(text) == expected);
}

TEST_CASE("time spans follow systemd.time: bare seconds, unit words and sums", "[units][values]") {
  auto [text, expected] = GENERATE(table<std::string, Duration>({
      {"90", 90s},
      {"0", 0s},
      {"2min 30s", 150s},
      {"2min30s", 150s},
      {"1h", 1h},
      {"1.5s", 1500ms},
      {"100ms", 100ms},
      {"5 min", 5min},
      {"1d 2h", 26h},
      {"3us", 3us},
      {"1w", 168h},
      {"infinity", kInfiniteDuration},
  }));
  CAPTURE(text);
  auto parsed = parse_timespan(text);
  REQUIRE(parsed);
  CHECK(*parsed == expected);
}

TEST_CASE("time spans reject signs, unknown units and garbage", "[units][values]") {
  auto text = GENERATE("", "-5s", "5x", "5mx", "s", "1.2.3", "infinity 5s", "99999999999999y");
  CAPTURE(text);
  CHECK_FALSE(parse_timespan(text));
}

TEST_CASE("a bare time span number can be read in another default unit", "[units][values]") {
  CHECK(*parse_timespan("250", 1us) == 250us);
  CHECK(*parse_timespan("250ms", 1us) == 250ms);
}

TEST_CASE("sizes use base-1024 suffixes and allow fractions", "[units][values]") {
  auto [text, expected] = GENERATE(table<std::string, std::uint64_t>({
      {"0", 0},
      {"512", 512},
      {"1K", 1024},
      {"1M", 1048576},
      {"1.5G", 1610612736ULL},
      {"2T", 2ULL << 40},
      {"10B", 10},
      {"1G 512M", (1ULL << 30) + (512ULL << 20)},
  }));
  CAPTURE(text);
  auto parsed = parse_size(text);
  REQUIRE(parsed);
  CHECK(*parsed == expected);
  CHECK_FALSE(parse_size("1Q"));
  CHECK_FALSE(parse_size("-1K"));
  CHECK_FALSE(parse_size("20E"));
}

TEST_CASE("modes are octal up to 07777", "[units][values]") {
  CHECK(*parse_mode("0666") == 0666);
  CHECK(*parse_mode("755") == 0755);
  CHECK(*parse_mode("07777") == 07777);
  CHECK_FALSE(parse_mode("0888"));
  CHECK_FALSE(parse_mode("17777"));
  CHECK_FALSE(parse_mode(""));
  CHECK_FALSE(parse_mode("rw"));
}

TEST_CASE("signals are named with or without SIG, or numbered", "[units][values]") {
  CHECK(*parse_signal("SIGTERM") == SIGTERM);
  CHECK(*parse_signal("TERM") == SIGTERM);
  CHECK(*parse_signal("9") == SIGKILL);
  CHECK(*parse_signal("SIGHUP") == SIGHUP);
  CHECK(*parse_signal("RTMIN+3") == SIGRTMIN + 3);
  CHECK(*parse_signal("SIGRTMAX") == SIGRTMAX);
  CHECK_FALSE(parse_signal("SIGFOO"));
  CHECK_FALSE(parse_signal("0"));
  CHECK_FALSE(parse_signal("999"));
  CHECK_FALSE(parse_signal("SIG"));
  CHECK(signal_name(SIGTERM) == "TERM");
}

TEST_CASE("C escapes are resolved and malformed ones rejected", "[units][values]") {
  CHECK(*c_unescape("Not allowed at this time\\r\\n") == "Not allowed at this time\r\n");
  CHECK(*c_unescape("a\\tb\\x41\\101\\s\\\\") == "a\tbAA \\");
  CHECK(*c_unescape("\\u00e9") == "\xc3\xa9");
  CHECK_FALSE(c_unescape("\\q"));
  CHECK_FALSE(c_unescape("\\x0"));
  CHECK_FALSE(c_unescape("\\x00"));
  CHECK_FALSE(c_unescape("trailing\\"));
}

TEST_CASE("words split at whitespace and honour quotes anywhere in a word", "[units][values]") {
  auto words = split_words(R"(a "b c" d'e f'g  'h\'i')", extract_unquote | extract_cunescape);
  REQUIRE(words);
  CHECK(*words == std::vector<std::string>{"a", "b c", "de fg", "h'i"});
  CHECK_FALSE(split_words("\"open", extract_unquote));
  CHECK(*split_words("\"open", extract_unquote | extract_relax) ==
        std::vector<std::string>{"open"});
  CHECK(split_words("   ", extract_unquote)->empty());
}

TEST_CASE("without unquoting, quotes are ordinary characters", "[units][values]") {
  CHECK(*split_words("\"a b\"", 0) == std::vector<std::string>{"\"a", "b\""});
}

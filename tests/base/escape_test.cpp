// escape_untrusted() and quote_untrusted(): every byte a peer chooses comes out printable,
// on one line, as one field.
#include "base/escape.h"

#include "tests/catch.h"

using namespace usherd;

TEST_CASE("escaping keeps printable ASCII and spells every other byte out", "[base][escape]") {
  using Row = std::pair<std::string, std::string>;
  auto [input, expected] = GENERATE(table<std::string, std::string>({
      Row{"plain text 1.2.3", "plain text 1.2.3"},
      Row{"line\nforged", "line\\nforged"},
      Row{"cr\rtab\t", "cr\\rtab\\t"},
      Row{"\x1b[31mred", "\\x1b[31mred"},
      Row{"quote\" back\\slash", "quote\\\" back\\\\slash"},
      Row{std::string("nul\0x", 5), "nul\\x00x"},
      Row{"del\x7f", "del\\x7f"},
      Row{"\xc3\xa9\xc2\x9b", "\\xc3\\xa9\\xc2\\x9b"},
  }));
  CHECK(escape_untrusted(input) == expected);
}

TEST_CASE("escaping spaces too makes one key=value token", "[base][escape]") {
  CHECK(escape_untrusted("/tmp/a b", 256, true) == "/tmp/a\\x20b");
  CHECK(escape_untrusted("/tmp/a b") == "/tmp/a b");
}

TEST_CASE("escaping keeps at most max_len bytes and marks the cut", "[base][escape]") {
  CHECK(escape_untrusted("abcdef", 3) == "abc...");
  CHECK(escape_untrusted("abc", 3) == "abc");
  CHECK(quote_untrusted(std::string(300, 'x')).size() == 2 + 256 + 3);
}

TEST_CASE("a quoted value is one field whatever it holds", "[base][escape]") {
  // A std::string argument: std::quoted would be a better match for a function called
  // quoted(), and it escapes no newline.
  std::string status = "done\nstart forged=1";
  CHECK(quote_untrusted(status) == "\"done\\nstart forged=1\"");
  CHECK(quote_untrusted("") == "\"\"");
}

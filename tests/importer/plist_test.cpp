// Property lists: values with their lines, and refusal of what is not a plain XML plist.
#include "tests/catch.h"

#include "importer/plist.h"

using namespace usherd::importer;

namespace {

std::string wrap(const std::string& body) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n" + body +
         "\n</plist>\n";
}

}  // namespace

TEST_CASE("a plist keeps types, order and lines", "[importer][plist]") {
  unsigned line = 0;
  auto v = parse_plist(wrap("<dict>\n"
                            "  <key>B</key><string>x &amp; y</string>\n"
                            "  <key>A</key><array><integer>-42</integer><true/><false/></array>\n"
                            "  <key>C</key><dict/>\n"
                            "  <key>D</key><string><![CDATA[<raw>]]></string>\n"
                            "</dict>"),
                       line);
  REQUIRE(v);
  REQUIRE(v->type == PlistValue::Type::dict);
  REQUIRE(v->dict.size() == 4);
  CHECK(v->dict[0].key == "B");
  CHECK(v->find("B")->text == "x & y");
  CHECK(v->find("B")->line == 4);
  const PlistValue* a = v->find("A");
  REQUIRE(a->array.size() == 3);
  CHECK(a->array[0].integer == -42);
  CHECK(a->array[1].boolean);
  CHECK_FALSE(a->array[2].boolean);
  CHECK(v->find("C")->dict.empty());
  CHECK(v->find("D")->text == "<raw>");
  CHECK(v->find("missing") == nullptr);
}

TEST_CASE("what is not a plain XML plist is refused with its line", "[importer][plist]") {
  auto [text, error_line, words] = GENERATE(table<std::string, unsigned, std::string>({
      {"bplist00\x01\x02", 0, "binary property list"},
      {wrap("<dict><key>A</key></dict>"), 3, "has no value"},
      {wrap("<dict>\n<string>x</string></dict>"), 4, "without a <key>"},
      {wrap("<dict><key>A</key><integer>12x</integer></dict>"), 3, "not an integer"},
      {wrap("<dict><key>A</key><strin>x</strin></dict>"), 3, "unknown element"},
      {wrap("<dict><key>A</key><string>x</dict>"), 3, "not well-formed"},
      {wrap("<dict/><dict/>"), 3, "more than one value"},
      {"<?xml version=\"1.0\"?>\n<nope/>\n", 0, "not a property list"},
      {"<?xml version=\"1.0\"?>\n<!DOCTYPE plist [<!ENTITY e \"boom\">]>\n"
       "<plist><dict><key>A</key><string>&e;</string></dict></plist>\n",
       3, "entity"},
  }));
  unsigned line = 99;
  auto v = parse_plist(text, line);
  REQUIRE_FALSE(v);
  CAPTURE(v.error().message);
  CHECK(v.error().message.find(words) != std::string::npos);
  CHECK(line == error_line);
}

TEST_CASE("deep nesting is refused, not recursed into", "[importer][plist]") {
  std::string body;
  for (int i = 0; i < 200; ++i) body += "<array>";
  for (int i = 0; i < 200; ++i) body += "</array>";
  unsigned line = 0;
  CHECK_FALSE(parse_plist(wrap(body), line));
}

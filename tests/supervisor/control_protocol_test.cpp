#include "supervisor/control_protocol.h"

#include <catch2/catch.hpp>

using usherd::supervisor::parse_control_request;

TEST_CASE("control requests are validated before any command runs", "[supervisor][control]") {
  auto [body, expected] = GENERATE(table<std::string, std::string>({
      {"", "malformed request: syntax error"},
      {"not json", "malformed request: syntax error"},
      {"[1,2]", "malformed request: not a JSON object"},
      {R"({"command":"status"})", "unsupported protocol version (this usherd speaks version 1)"},
      {R"({"version":2,"command":"status"})",
       "unsupported protocol version (this usherd speaks version 1)"},
      {R"({"version":1})", "malformed request: no command"},
      {R"({"version":1,"command":7})", "malformed request: no command"},
  }));
  auto request = parse_control_request(body);
  CAPTURE(body);
  CHECK(request.error.rfind(expected.substr(0, 18), 0) == 0);
  CHECK_FALSE(request.error.empty());
}

TEST_CASE("a well-formed control request yields its command and arguments",
          "[supervisor][control]") {
  auto request = parse_control_request(R"({"version":1,"command":"stop","id":"ssh@1.service"})");
  CHECK(request.error.empty());
  CHECK(request.command == "stop");
  CHECK(request.args.at("id").as_string() == "ssh@1.service");
}

TEST_CASE("an oversized control request is refused without parsing", "[supervisor][control]") {
  std::string body(usherd::supervisor::kMaxRequest + 1, ' ');
  CHECK(parse_control_request(body).error == "request too large");
}

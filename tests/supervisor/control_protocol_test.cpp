#include "supervisor/control_protocol.h"

#include "tests/catch.h"

using usherd::supervisor::ControlCommand;
using usherd::supervisor::parse_control_answer;
using usherd::supervisor::parse_control_request;

TEST_CASE("control requests are validated before any command runs", "[supervisor][control]") {
  auto [body, expected] = GENERATE(table<std::string, std::string>({
      {"", "malformed request: syntax error"},
      {"not json", "malformed request: syntax error"},
      {R"({"version":1,"command":"status")", "malformed request: incomplete JSON"},
      {"[1,2]", "malformed request: not a JSON object"},
      {R"({"command":"status"})", "unsupported protocol version (this usherd speaks version 1)"},
      {R"({"version":2,"command":"status"})",
       "unsupported protocol version (this usherd speaks version 1)"},
      {R"({"version":"1","command":"status"})",
       "unsupported protocol version (this usherd speaks version 1)"},
      {R"({"version":1})", "malformed request: no command"},
      {R"({"version":1,"command":7})", "malformed request: no command"},
      {R"({"version":1,"command":"frobnicate"})", "unknown command frobnicate"},
      {R"({"version":1,"command":"STATUS"})", "unknown command STATUS"},
      {R"({"version":1,"command":"stop"})", "stop needs an instance id"},
      {R"({"version":1,"command":"stop","id":""})", "stop needs an instance id"},
      {R"({"version":1,"command":"stop","id":["a"]})", "stop needs an instance id"},
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
  CHECK(request.command == ControlCommand::stop);
  CHECK(request.id == "ssh@1.service");
  auto text = parse_control_request(" {\"command\":\"status-text\",\"version\":1}\n");
  CHECK(text.error.empty());
  CHECK(text.command == ControlCommand::status_text);
  CHECK(to_string(text.command) == "status-text");
}

TEST_CASE("an oversized control request is refused without parsing", "[supervisor][control]") {
  std::string body(usherd::supervisor::kMaxRequest + 1, ' ');
  CHECK(parse_control_request(body).error == "request too large");
  std::string padded = R"({"version":1,"command":"list"})";
  padded.resize(usherd::supervisor::kMaxRequest, ' ');
  CHECK(parse_control_request(padded).error.empty());
}

TEST_CASE("an unknown command is echoed cut short", "[supervisor][control]") {
  std::string word(1000, 'x');
  auto request = parse_control_request(R"({"version":1,"command":")" + word + "\"}");
  CHECK(request.error == "unknown command " + std::string(64, 'x') + "...");
}

TEST_CASE("usherctl reads the daemon's answer or names what is wrong with it",
          "[supervisor][control]") {
  auto ok = parse_control_answer(R"({"version":1,"ok":true,"result":{"a":1}})");
  REQUIRE(ok);
  CHECK(ok->at("a").as_int64() == 1);
  auto refused = parse_control_answer(R"({"version":1,"ok":false,"error":"no instance x"})");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "no instance x");
  for (const char* bad : {"", "{", "[]", R"({"ok":"yes"})", "\xff"}) {
    auto answer = parse_control_answer(bad);
    CAPTURE(bad);
    REQUIRE_FALSE(answer);
    CHECK(answer.error().message == "usherd sent a malformed answer");
  }
}

// Control requests and answers (see control_protocol.h).
#include "supervisor/control_protocol.h"

#include <array>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace usherd::supervisor {
namespace {

constexpr std::array<std::pair<ControlCommand, std::string_view>, 6> kCommands{{
    {ControlCommand::status, "status"},
    {ControlCommand::status_text, "status-text"},
    {ControlCommand::list, "list"},
    {ControlCommand::metrics, "metrics"},
    {ControlCommand::reload, "reload"},
    {ControlCommand::stop, "stop"},
}};

/// At most this much of a client's own text is repeated in an error answer.
constexpr std::size_t kEchoMax = 64;

std::string echo(std::string_view text) {
  if (text.size() <= kEchoMax) return std::string(text);
  // Cut on a UTF-8 character boundary: the answer is JSON, and the text came from a JSON string.
  std::size_t cut = kEchoMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace

std::string_view to_string(ControlCommand command) {
  for (const auto& [c, word] : kCommands)
    if (c == command) return word;
  return "unknown";
}

ControlRequest parse_control_request(std::string_view body) {
  ControlRequest request;
  if (body.size() > kMaxRequest) {
    request.error = "request too large";
    return request;
  }
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(body, ec);
  if (ec) {
    request.error = "malformed request: " + ec.message();
    return request;
  }
  const boost::json::object* object = value.if_object();
  if (object == nullptr) {
    request.error = "malformed request: not a JSON object";
    return request;
  }
  const boost::json::value* version = object->if_contains("version");
  if (version == nullptr || !version->is_int64() || version->as_int64() != kProtocolVersion) {
    request.error = "unsupported protocol version (this usherd speaks version 1)";
    return request;
  }
  const boost::json::value* command = object->if_contains("command");
  if (command == nullptr || !command->is_string()) {
    request.error = "malformed request: no command";
    return request;
  }
  std::string_view word = command->get_string();
  bool known = false;
  for (const auto& [c, name] : kCommands) {
    if (name == word) {
      request.command = c;
      known = true;
    }
  }
  if (!known) {
    request.error = "unknown command " + echo(word);
    return request;
  }
  if (request.command == ControlCommand::stop) {
    const boost::json::value* id = object->if_contains("id");
    if (id == nullptr || !id->is_string() || id->get_string().empty()) {
      request.error = "stop needs an instance id";
      return request;
    }
    request.id = std::string(id->get_string());
  }
  return request;
}

std::string control_ok(const boost::json::value& result) {
  boost::json::object out;
  out["version"] = kProtocolVersion;
  out["ok"] = true;
  out["result"] = result;
  return boost::json::serialize(out) + "\n";
}

std::string control_error(std::string_view message) {
  boost::json::object out;
  out["version"] = kProtocolVersion;
  out["ok"] = false;
  out["error"] = message;
  return boost::json::serialize(out) + "\n";
}

Result<boost::json::value> parse_control_answer(std::string_view answer) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(answer, ec);
  if (ec || !value.is_object()) return fail("usherd sent a malformed answer");
  const auto& obj = value.get_object();
  const auto* ok = obj.if_contains("ok");
  if (ok == nullptr || !ok->is_bool()) return fail("usherd sent a malformed answer");
  if (!ok->get_bool()) {
    const auto* error = obj.if_contains("error");
    return fail(error && error->is_string() ? std::string(error->get_string()) : "refused");
  }
  const auto* result = obj.if_contains("result");
  return result ? *result : boost::json::value(nullptr);
}

}  // namespace usherd::supervisor

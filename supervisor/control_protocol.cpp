#include "supervisor/control_protocol.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace usherd::supervisor {

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
  request.command = std::string(command->as_string());
  request.args = *object;
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

}  // namespace usherd::supervisor

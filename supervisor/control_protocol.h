// The control protocol between usherctl and usherd, over the unix stream socket
// RUNTIME/control (mode 0600, peers checked with SO_PEERCRED).
//
// One request per connection: the client writes one JSON object and shuts down its writing
// side; the daemon answers with one JSON object and closes. Requests:
//   {"version": 1, "command": "status" | "list" | "metrics" | "reload" | "stop", "id": "..."}
// Answers: {"version": 1, "ok": true, "result": ...} or {"version": 1, "ok": false,
// "error": "..."}. Anything else — not JSON, too large (> kMaxRequest), an unknown version
// or command, too slow (> kRequestDeadline) — is answered with an error, never a stall.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

namespace usherd::supervisor {

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxRequest = 64 * 1024;
inline constexpr auto kRequestDeadline = std::chrono::seconds(5);

/// A parsed request, or the error text to answer with.
struct ControlRequest {
  std::string command;
  boost::json::object args;
  std::string error;  ///< non-empty: the request was refused
};

/// Parses and validates one request body.
ControlRequest parse_control_request(std::string_view body);
/// {"version":1,"ok":true,"result":result}
std::string control_ok(const boost::json::value& result);
/// {"version":1,"ok":false,"error":message}
std::string control_error(std::string_view message);

}  // namespace usherd::supervisor

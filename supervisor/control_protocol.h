// The control protocol between usherctl and usherd, over the unix stream socket
// RUNTIME/control (mode 0600, peers checked with SO_PEERCRED).
//
// One request per connection: the client writes one JSON object and shuts down its writing
// side; the daemon answers with one JSON object and closes. Requests:
//   {"version": 1, "command": "status" | "status-text" | "list" | "metrics" | "reload"}
//   {"version": 1, "command": "stop", "id": "ssh@3-....service"}
// Answers: {"version": 1, "ok": true, "result": ...} or {"version": 1, "ok": false,
// "error": "..."}. Anything else — not JSON, too large (> kMaxRequest), an unknown version
// or command, a stop without an id, too slow (> kRequestDeadline) — is answered with an
// error, never a stall. Everything a request can get wrong is found here, before any command
// runs, so the daemon only dispatches.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "base/result.h"

namespace usherd::supervisor {

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxRequest = 64 * 1024;
inline constexpr auto kRequestDeadline = std::chrono::seconds(5);

/// What a request asks the daemon to do.
enum class ControlCommand { status, status_text, list, metrics, reload, stop };

/// The word a request names command with ("status-text").
std::string_view to_string(ControlCommand command);

/// A parsed request, or the error text to answer with.
struct ControlRequest {
  ControlCommand command = ControlCommand::status;  ///< valid when error is empty
  std::string id;                                   ///< stop: the instance to stop
  std::string error;                                ///< non-empty: the request was refused
};

/// Parses and validates one request body.
ControlRequest parse_control_request(std::string_view body);
/// {"version":1,"ok":true,"result":result}
std::string control_ok(const boost::json::value& result);
/// {"version":1,"ok":false,"error":message}
std::string control_error(std::string_view message);
/// The client side: the result of an ok answer, or the daemon's error text (or why the
/// answer could not be read) as the error.
Result<boost::json::value> parse_control_answer(std::string_view answer);

}  // namespace usherd::supervisor

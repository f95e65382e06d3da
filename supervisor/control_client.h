// The client side of the control protocol (control_protocol.h), used by usherctl.
#pragma once

#include <string>

#include <boost/json/value.hpp>

#include "base/result.h"

namespace usherd::supervisor {

/// Sends one request to RUNTIME/control and returns the daemon's "result" value, or an
/// error: the daemon's own error text, or why it could not be reached.
Result<boost::json::value> control_call(const std::string& runtime_dir,
                                        const boost::json::object& request);

}  // namespace usherd::supervisor

// Listen*= addresses (systemd.socket(5)): "22" (any address, dual-stack), "a.b.c.d:22",
// "[v6]:22", "/path" (a file-system socket) and "@name" (an abstract socket).
//
// Only the syntax is checked here; nothing is resolved or bound. Hosts must be numeric (as in
// systemd, which never resolves names for Listen*=) and are kept in canonical form.
#pragma once

#include <string_view>

#include "base/result.h"
#include "units/config.h"

namespace usherd::units {

/// Parses one Listen*= value for a socket of the given type.
Result<ListenAddress> parse_listen_address(std::string_view text, SocketType type);

}  // namespace usherd::units

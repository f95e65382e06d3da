// The daemon's one logger. Records start with a verb and carry key=value fields; strings a
// client, an instance or a unit controls go through quote_untrusted() (base/escape.h) so a
// peer cannot forge a field or a line.
//
// Output goes to the journal with structured fields when stderr is the journal (systemd's
// JOURNAL_STREAM names our stderr's device:inode), otherwise to stderr with timestamps. Only
// supervisor/ logs; the libraries below return errors.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "base/escape.h"

namespace usherd::supervisor {

/// Sets up the default logger at the given level ("debug", "info", "warning", ...).
/// Returns false (and keeps "info") when the level is not a known name.
bool setup_logging(std::string_view level);

/// True when setup_logging chose the journal.
bool logging_to_journal();

/// Writes one record with journal fields (INSTANCE=, SOCKET=, REMOTE_ADDR=) when logging to
/// the journal, or the plain message otherwise. Fields may be empty.
void log_structured(spdlog::level::level_enum level, std::string_view message,
                    std::string_view instance, std::string_view socket,
                    std::string_view remote_addr);

}  // namespace usherd::supervisor

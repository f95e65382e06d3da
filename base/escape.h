// The one spelling of bytes that someone else chose: a client's AF_UNIX address, an
// instance's output or STATUS=, anything a peer, a local user or an instance controls.
//
// Such bytes reach log lines, the journal, terminals (usherctl) and key=value fields, where a
// newline forges a record, an escape sequence drives the operator's terminal and a space or a
// quote forges a field. Every one of them goes through escape_untrusted() or
// quote_untrusted(); the names are usherd's own on purpose: a function called quoted() lost to
// std::quoted, found by argument-dependent lookup for a std::string and escaping no newline.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace usherd {

/// Printable ASCII is kept except backslash, double quote and (with escape_space) space;
/// \n \r \t and \\ \" are written as such, every other byte (controls, DEL, bytes >= 0x80)
/// as \xNN. At most max_len bytes of text are kept; "..." marks a cut.
std::string escape_untrusted(std::string_view text,
                             std::size_t max_len = std::numeric_limits<std::size_t>::max(),
                             bool escape_space = false);

/// escape_untrusted(text, max_len) in double quotes: one key=value field whatever text holds.
std::string quote_untrusted(std::string_view text, std::size_t max_len = 256);

}  // namespace usherd

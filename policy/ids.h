// The identifiers the admission engine hands out: sockets it knows, connections it admitted
// (instances) and connections it parked in its waiting room (tickets). Plain enums, never
// reused, so a stale id is recognised as unknown instead of naming someone else.
#pragma once

#include <cstdint>

namespace usherd::policy {

/// A socket registered with the engine; never reused.
enum class SocketId : std::uint32_t {};
/// An admitted connection; never reused.
enum class InstanceId : std::uint64_t {};
/// A connection parked in the waiting room; never reused.
enum class TicketId : std::uint64_t {};

}  // namespace usherd::policy

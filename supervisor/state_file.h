// RUNTIME/state: the instance table on disk, so a usherd started again after a crash, a
// SIGKILL or an upgrade re-adopts the instances still alive and the startup budget does not
// reset to zero in the middle of a flood.
//
// The file is an append-only journal of one line per event ("+" spawned, "r" ready, "-"
// ended) instead of a table rewritten per event; it is compacted (rewritten from the live
// table, then renamed over) when it grows past a multiple of the live entries. record()
// appends to a buffer and flush() writes the buffer with one write(2), so a batch of spawns
// costs one system call; the caller decides which events must be on disk at once (see
// Daemon::persist). Lines are written whole with O_APPEND, so a crash leaves at most a torn
// last line, which the reader ignores.
//
// What the file says decides which processes a new usherd adopts and may later signal, so it
// is trusted only when nobody else could have written it: the caller proves the runtime
// directory private (activation::open_private_directory), files are created with openat() and
// O_EXCL | O_NOFOLLOW (a planted state.new symlink cannot redirect the write), and read()
// refuses a file that is not a regular file of usherd's own uid writable by it alone. The
// first line names the boot ("#usherd-state\tboot=ID"): a file from another boot names no live
// process. Each entry also carries its start on CLOCK_BOOTTIME ("b<ms>"), so ages survive a
// change of the wall clock. Lines of the older 8-field form are still read.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::supervisor {

/// One instance as it is written: StateEntry's fields by reference, so recording an event
/// copies nothing before encoding it.
struct StateEntryView {
  pid_t pid = 0;
  std::uint64_t pidfd_inode = 0;
  std::uint64_t start_time = 0;
  std::int64_t started_unix_ms = 0;
  std::int64_t started_boot_ms = 0;  ///< CLOCK_BOOTTIME at the start; 0 when unknown
  bool ready = false;
  std::string_view socket;
  std::string_view name;
  std::string_view peer;
};

/// One instance as recorded.
struct StateEntry {
  pid_t pid = 0;
  /// Which process the pid is: its pidfd's inode number where pidfds live on pidfs (Linux
  /// 6.9+, see activation::pidfd_inode), else its /proc/PID/stat starttime. Written as
  /// "i<inode>" or "<starttime>" in the third column.
  std::uint64_t pidfd_inode = 0;
  std::uint64_t start_time = 0;  ///< /proc/PID/stat starttime (clock ticks since boot)
  std::int64_t started_unix_ms = 0;
  std::int64_t started_boot_ms = 0;  ///< CLOCK_BOOTTIME at the start; 0 when unknown
  bool ready = false;
  std::string socket;
  std::string name;
  std::string peer;

  StateEntryView view() const {
    return {pid,    pidfd_inode, start_time, started_unix_ms, started_boot_ms, ready,
            socket, name,        peer};
  }
};

class StateFile {
 public:
  enum class Event { spawned, ready, ended };

  /// The boot id written at the top of every journal open() starts.
  void set_boot_id(std::string boot_id) { boot_id_ = std::move(boot_id); }

  /// Reads the table left by a previous run (missing file: empty). An error when the file
  /// cannot be trusted (not a regular file owned by usherd's uid and writable by it alone)
  /// or names another boot than boot_id.
  static Result<std::vector<StateEntry>> read(const std::string& path, std::string_view boot_id);

  /// Starts a new journal at path holding entries (written whole to PATH.new, created with
  /// O_EXCL | O_NOFOLLOW, then renamed over).
  Result<void> open(const std::string& path, const std::vector<StateEntry>& entries);
  /// Appends one event to the buffer.
  void record(Event event, const StateEntryView& entry);
  /// Writes the buffered events (one write(2); nothing when the buffer is empty).
  void flush();
  /// True when the journal has grown enough that the caller should rewrite it.
  bool wants_compaction(std::size_t live) const { return lines_ > 1024 + 4 * live; }
  /// Removes the file (clean shutdown with nothing left to adopt).
  void remove();

 private:
  std::string path_;
  std::string boot_id_;
  UniqueFd fd_;
  std::string buffer_;
  std::size_t lines_ = 0;
};

/// Appends one journal line to out.
void append_state_line(std::string& out, char op, const StateEntryView& entry);
/// Encodes/decodes one journal line (exposed for tests).
std::string encode_state_line(char op, const StateEntry& entry);
bool decode_state_line(const std::string& line, char& op, StateEntry& entry);

}  // namespace usherd::supervisor

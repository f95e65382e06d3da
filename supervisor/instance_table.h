// Every process usherd tracks: the instances by key and pid, the exit watch over their
// pidfds, the state file that lets a restarted usherd adopt them, and the one timer each
// instance has (startup and stop deadlines, SIGKILL escalation).
//
// An exit goes to the instance's owner (instance.h), which decides what follows; the table
// then forgets the instance. Two steps around that are not the table's to decide, and are
// given to it by the daemon as hooks: what to read before the process is reaped (a queued
// READY=1 is attributed by pid, which must still name the instance), and what to do once an
// instance is gone (fds freed: paused listeners may try again).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "activation/process.h"
#include "supervisor/instance.h"
#include "supervisor/state_file.h"

namespace usherd::supervisor {

class InstanceTable {
 public:
  struct Hooks {
    /// Before a starting instance's exit is reaped: read what it may still have sent.
    std::function<void(Instance&)> before_reap;
    /// Before an ended instance is forgotten: drain its output.
    std::function<void(Instance&)> before_forget;
    /// After an instance has been forgotten.
    std::function<void()> after_end;
  };

  InstanceTable(asio::io_context& io, std::string state_path);
  ~InstanceTable();
  InstanceTable(const InstanceTable&) = delete;
  InstanceTable& operator=(const InstanceTable&) = delete;

  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }
  /// Creates the exit watch and starts waiting for exits.
  Result<void> start();

  /// Tracks a process just started: gives it its key, watches its exit, and records it in
  /// the state file (flushed by the caller, once per batch).
  Instance& track(std::unique_ptr<Instance> instance);
  /// Re-adopts the processes recorded by the usherd before this one whose identity is
  /// proven (same process, still its own session's leader); returns them, ownerless.
  std::vector<Instance*> adopt_from_state_file();

  Instance* find(std::uint64_t key);
  Instance* find_by_pid(pid_t pid);
  Instance* find_by_name(const std::string& name);
  const std::unordered_map<std::uint64_t, std::unique_ptr<Instance>>& all() const {
    return instances_;
  }
  std::size_t size() const { return instances_.size(); }
  /// owner is going away: its instances are watched until they end, with no owner.
  void disown(const InstanceOwner* owner);

  /// Records a change of the instance (spawned: flushed by the caller; ready: at once).
  void persist(Instance& instance, StateFile::Event event);
  void flush_state() { state_file_.flush(); }
  /// At exit: the state file written, and removed when nothing is left to adopt.
  void close_state();

  /// Arms the instance's one timer: on_expiry runs after `after` if the instance still
  /// exists then. Arming it again replaces what it was waiting for.
  void arm_timer(Instance& instance, Clock::duration after,
                 std::function<void(Instance&)> on_expiry);
  /// Signals the instance (unless signalled: it has been, by its group) and SIGCONT, and
  /// sends SIGKILL after escalate_after.
  void stop(Instance& instance, int signal, Clock::duration escalate_after, bool signalled = false);
  /// Stops the instance as its unit says: KillSignal=, then SIGKILL after TimeoutStopSec=.
  void stop_as_unit_says(Instance& instance);
  /// The instance's TimeoutStopSec= (90 s without a plan).
  static units::Duration timeout_stop_of(const Instance& instance);

  /// Housekeeping: orphans reaped, and instances the exit watch could not take looked at.
  void housekeeping();

 private:
  void watch_exit(Instance& instance);
  void wait_for_exits();
  void on_exit(std::uint64_t key);
  StateEntryView state_view(const Instance& instance) const;

  asio::io_context& io_;
  std::string state_path_;
  Hooks hooks_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Instance>> instances_;
  std::unordered_map<pid_t, std::uint64_t> by_pid_;
  std::uint64_t next_key_ = 1;
  /// Every tracked instance's pidfd, reporting its end; its fd is exit_watch_io_ in the loop.
  std::optional<activation::ExitWatch> exit_watch_;
  std::unique_ptr<asio::posix::stream_descriptor> exit_watch_io_;
  std::vector<std::uint64_t> exit_keys_;
  /// Instances whose pidfd the exit watch could not take (ENOMEM): polled by housekeeping.
  std::vector<std::uint64_t> unwatched_;
  StateFile state_file_;
};

}  // namespace usherd::supervisor

// The configured sockets and their listening fds: opened (or kept across a reload, or taken
// from the service manager), watched for connections, paused when accepting fails for want
// of fds or memory, and held while too many children are still before their execve.
//
// A Socket is the entity a socket unit becomes: its unit, its service's plan, its
// admission id and counters, its listeners, and (Accept=no) the runner of its service.
// Who handles a readable listener is the daemon's wiring: the connection path for
// Accept=yes stream sockets, the service runner otherwise.
//
// Resource exhaustion (EMFILE, ENFILE, ENOMEM, ENOBUFS) pauses that listener: accept would
// fail again at once on a connection that stays queued, so retrying right away would spin.
// It is retried when the pause timer expires or as soon as an instance ends (which frees
// fds), whichever comes first. One error line when the episode starts, one when it ends.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "activation/socket_address.h"
#include "policy/admission.h"
#include "supervisor/drop_log.h"
#include "supervisor/spawn_plan.h"
#include "units/config.h"

namespace usherd::supervisor {

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

struct Socket;
class ServiceRunner;

/// One listening fd of a socket unit.
struct Listener {
  Socket* owner = nullptr;
  std::string key;    ///< address and options: equal keys keep the fd across reloads
  std::string bound;  ///< the address actually bound ("127.0.0.1:41234")
  int type = 0;       ///< SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  std::unique_ptr<asio::posix::stream_descriptor> fd;
  /// Every accepted connection's local address when it is bound to one IP address; empty for
  /// a wildcard or AF_UNIX (activation::fixed_local_address).
  activation::SocketAddress fixed_local;
  bool waiting = false;
  bool paused = false;
  /// Not armed: too many children launched by usherd are still before their execve.
  bool held = false;
  /// An EMFILE/ENFILE/ENOMEM/ENOBUFS episode: since when, and how many pauses so far.
  std::optional<Clock::time_point> exhausted_since;
  unsigned exhausted_pauses = 0;
  std::unique_ptr<asio::steady_timer> pause_timer;
};

/// A socket unit as usherd runs it.
struct Socket {
  units::SocketUnit unit;
  std::shared_ptr<ServicePlan> service;
  policy::SocketId policy_id{};
  /// The launcher's group tag of this socket's launches (a hash of its name, so it survives
  /// a reload).
  std::uint64_t launch_group = 0;
  std::uint64_t accept_counter = 0;
  DropLog drop_log;
  std::vector<std::unique_ptr<Listener>> listeners;
  /// Accept=no: the runner of its service (shared: the type is complete only where used).
  std::shared_ptr<ServiceRunner> runner;

  bool held() const;
  /// The listening fds, in Listen*= order.
  std::vector<int> fds() const;
};

class ListenerSet {
 public:
  /// A listener has a connection (or a datagram) waiting.
  using Readable = std::function<void(Listener&)>;
  /// Whether a socket's listeners must wait for children before their execve.
  using MustHold = std::function<bool(const Socket&, Clock::time_point)>;
  /// Listeners that did not change across a reload, by key.
  using Reuse = std::map<std::string, std::unique_ptr<Listener>>;

  explicit ListenerSet(asio::io_context& io) : io_(io) {}
  void set_handlers(Readable readable, MustHold must_hold) {
    readable_ = std::move(readable);
    must_hold_ = std::move(must_hold);
  }

  std::vector<std::unique_ptr<Socket>>& sockets() { return sockets_; }
  const std::vector<std::unique_ptr<Socket>>& sockets() const { return sockets_; }
  Socket* find(const std::string& name);

  /// Opens socket's listeners: kept from reuse when their key matches, else taken from the
  /// service manager's (LISTEN_FDS), else bound anew.
  void open(Socket& socket, Reuse& reuse);
  /// Watches the listener for its next connection (unless paused, held, or shutting down).
  void arm(Listener& listener);
  void arm_all(Socket& socket);
  /// Out of fds or memory: stops accepting on listener for a while.
  void pause(Listener& listener, int error);
  void pause_all(Socket& socket, int error);
  /// The listener waits until must_hold says otherwise (looked at every millisecond).
  void hold(Listener& listener);
  /// An instance ended and freed its fds: paused listeners try again now.
  void resume_exhausted();
  /// Accepting works again on listener: the end of an exhaustion episode is logged.
  void accepted(Listener& listener);
  /// Shutdown: every listener closed, nothing armed again.
  void close_all();

 private:
  void arm_held_timer();
  void release_held();

  asio::io_context& io_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  Readable readable_;
  MustHold must_hold_;
  bool closed_ = false;
  bool exhausted_ = false;  ///< some listener is paused for want of fds
  std::unique_ptr<asio::steady_timer> held_timer_;
  bool held_timer_armed_ = false;
};

/// Accept or spawn failed for want of fds or memory: retrying at once would fail the same way.
inline bool is_fd_exhaustion(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS;
}

}  // namespace usherd::supervisor

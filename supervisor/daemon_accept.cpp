// Listeners and the per-connection path (Accept=yes).
//
// A listener is watched with async_wait(wait_read) and drained with accept4(SOCK_CLOEXEC)
// (Asio's own accept would not set close-on-exec). Each wake-up accepts up to a bounded batch
// so one busy socket cannot starve the others, then re-arms. An admitted connection's
// process is prepared and launched here without waiting for its execve (activation::
// Launcher: the loop is never suspended by a child) and tracked at once; the batch's
// state-file lines and accept log lines go out once the listener is drained
// (finish_launches() in daemon_instances.cpp). While kMaxStarting launched children have not
// reached their execve, the listeners are held and the kernel's accept queue keeps the rest.
// Only children still making progress hold every socket: one that has not exec'd after
// kStallAfter (SIGSTOPped by a process of its own user, a hung WorkingDirectory= or binary)
// holds only its own socket, and is killed at kExecDeadline (enforce_exec_deadline).
//
// Resource exhaustion (EMFILE, ENFILE, ENOMEM, ENOBUFS) pauses that listener: accept would
// fail again at once on a connection that stays queued, so retrying right away would spin.
// It is retried when the pause timer expires or as soon as an instance ends (which frees fds),
// whichever comes first. One error line when the episode starts, one line when it ends.
#include <sys/socket.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "supervisor/convert.h"
#include "supervisor/daemon.h"
#include "supervisor/logging.h"

namespace usherd::supervisor {
namespace {

constexpr int kAcceptBatch = 64;
constexpr auto kPauseOnExhaustion = std::chrono::milliseconds(250);

}  // namespace

std::string Daemon::startups_text() const {
  return fmt::format("{}/{}", admission_->startups().current, max_startups_text_);
}

void Daemon::open_listeners(SocketState& socket,
                            std::map<std::string, std::unique_ptr<ListenerState>>& reuse) {
  for (const auto& address : socket.unit.listen) {
    activation::ListenSpec spec = to_listen_spec(socket.unit, address);
    std::string key = listen_key(spec);
    auto listener = std::make_unique<ListenerState>();
    listener->owner = &socket;
    listener->key = key;
    listener->type = socket_type(spec);
    if (auto it = reuse.find(key); it != reuse.end()) {
      // Same address and options as before the reload: keep the fd, so no connection is
      // refused while the configuration changes.
      listener->bound = it->second->bound;
      listener->fd = std::move(it->second->fd);
      reuse.erase(it);
    } else if (auto adopted = take_inherited_listener(spec, socket.unit)) {
      listener->bound = adopted->bound;
      listener->fd = std::make_unique<asio::posix::stream_descriptor>(io_, adopted->fd.release());
    } else {
      auto opened = activation::open_listener(spec);
      if (!opened) {
        spdlog::error("listen socket={} address={} failed: {}", socket.unit.name, address.text,
                      opened.error().to_string());
        continue;
      }
      listener->bound = opened->bound;
      listener->fd = std::make_unique<asio::posix::stream_descriptor>(io_, opened->fd.release());
      spdlog::info("listen socket={} address={} accept={}", socket.unit.name, listener->bound,
                   socket.unit.accept ? "yes" : "no");
    }
    listener->fixed_local = activation::fixed_local_address(listener->fd->native_handle());
    socket.listeners.push_back(std::move(listener));
  }
}

void Daemon::arm_listener(ListenerState& listener) {
  if (listener.waiting || listener.paused || stopping_ || !listener.fd) return;
  listener.waiting = true;
  ListenerState* self = &listener;
  listener.fd->async_wait(asio::posix::stream_descriptor::wait_read,
                          [this, self](const boost::system::error_code& ec) {
                            // Cancelled by a reload, which may already have freed this state
                            // (its fd lives on in a new one), or by shutdown: touch nothing.
                            if (ec == asio::error::operation_aborted) return;
                            self->waiting = false;
                            if (ec) return;
                            on_listener_readable(*self);
                          });
}

void Daemon::pause_listener(ListenerState& listener, int error) {
  listener.paused = true;
  listeners_exhausted_ = true;
  ++listener.exhausted_pauses;
  if (!listener.exhausted_since) {
    listener.exhausted_since = Clock::now();
    spdlog::error(
        "accept socket={} address={} paused: {}; retrying every {}ms or when an instance ends",
        listener.owner->unit.name, listener.bound, std::strerror(error),
        kPauseOnExhaustion.count());
  } else {
    spdlog::debug("accept socket={} address={} still paused: {}", listener.owner->unit.name,
                  listener.bound, std::strerror(error));
  }
  if (!listener.pause_timer) listener.pause_timer = std::make_unique<asio::steady_timer>(io_);
  listener.pause_timer->expires_after(kPauseOnExhaustion);
  ListenerState* self = &listener;
  listener.pause_timer->async_wait([this, self](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: resumed early, or closed
    self->paused = false;
    arm_listener(*self);
  });
}

void Daemon::resume_exhausted_listeners() {
  if (stopping_) return;
  listeners_exhausted_ = false;
  for (auto& s : sockets_) {
    for (auto& l : s->listeners) {
      if (!l->paused || !l->exhausted_since) continue;
      l->paused = false;
      if (l->pause_timer) l->pause_timer->cancel();
      arm_listener(*l);
    }
  }
}

void Daemon::on_listener_readable(ListenerState& listener) {
  SocketState& socket = *listener.owner;
  if (!socket.unit.accept || listener.type != SOCK_STREAM) {
    // Accept=no (or a datagram socket): the service takes the listening sockets.
    start_service(socket);
    return;
  }
  bool rearm = true;
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (must_hold(socket, Clock::now())) {
      hold_listener(listener);
      rearm = false;
      break;
    }
    auto conn = activation::accept_connection(listener.fd->native_handle(), listener.fixed_local);
    if (!conn) {
      int error = conn.error().code;
      if (error == EAGAIN || error == EWOULDBLOCK) break;
      if (is_fd_exhaustion(error)) {
        pause_listener(listener, error);
        break;
      }
      // ECONNABORTED, EPROTO, EPERM (firewall), network errors on the new socket: that
      // connection is gone; the listener is fine.
      spdlog::debug("accept socket={} error: {}", socket.unit.name, conn.error().to_string());
      continue;
    }
    if (listener.exhausted_since) {
      spdlog::warn("accept socket={} address={} resumed after {:.1f}s ({} pauses)",
                   socket.unit.name, listener.bound,
                   std::chrono::duration<double>(Clock::now() - *listener.exhausted_since).count(),
                   listener.exhausted_pauses);
      listener.exhausted_since.reset();
      listener.exhausted_pauses = 0;
    }
    handle_connection(socket, std::move(*conn), Clock::now());
    if (listener.paused) break;  // out of fds or processes: resumed by its timer
  }
  finish_launches();
  // Not while paused (out of fds: resumed by its timer or an instance's end); arm_listener()
  // checks that.
  if (rearm) arm_listener(listener);
}

void Daemon::hold_listener(ListenerState& listener) {
  listener.held = true;
  arm_held_timer();
}

void Daemon::arm_held_timer() {
  if (held_timer_armed_) return;
  // Nothing signals a child's execve to usherd (its pidfd says only when it exits), so the
  // held listeners look again every millisecond; this timer runs only while the cores are
  // saturated with starting processes, where one more wake-up per millisecond is noise.
  if (!held_timer_) held_timer_ = std::make_unique<asio::steady_timer>(io_);
  held_timer_armed_ = true;
  held_timer_->expires_after(std::chrono::milliseconds(1));
  held_timer_->async_wait([this](const boost::system::error_code& ec) {
    held_timer_armed_ = false;
    if (ec) return;
    release_held_listeners();
  });
}

bool Daemon::must_hold(const SocketState& socket, Clock::time_point now) {
  // The common case costs one look: fewer than kMaxStarting children before execve at all.
  if (launcher_.starting() < kMaxStarting) return false;
  // A socket's own children count as long as they are before their execve; every other
  // socket's only while they still make progress.
  std::size_t counted = launcher_.starting_since(now - kStallAfter);
  if (counted >= kMaxStarting) return true;
  for (const auto& stalled : launcher_.launched_before(now - kStallAfter))
    if (stalled.group == socket.launch_group) ++counted;
  return counted >= kMaxStarting;
}

std::size_t Daemon::stalled_launches() const {
  return launcher_.launched_before(Clock::now() - kStallAfter).size();
}

void Daemon::enforce_exec_deadline(Clock::time_point now) {
  for (const auto& stalled : launcher_.launched_before(now - kExecDeadline)) {
    Instance* instance = find_by_pid(stalled.pid);
    if (instance == nullptr || instance->exec_overdue) continue;
    instance->exec_overdue = true;
    (void)activation::send_signal(instance->pidfd.get(), SIGKILL);
    // A failed spawn (its startup slot freed now, its source not penalised), logged once.
    spawn_failed(instance->socket, instance->name, instance->peer, instance->admission,
                 Error{ETIMEDOUT,
                       fmt::format("no execve {:.1f}s after its launch (stopped, or stuck on "
                                   "WorkingDirectory= or the binary's file system); killed",
                                   std::chrono::duration<double>(now - stalled.launched).count())},
                 now);
    instance->admission.reset();
  }
}

void Daemon::release_held_listeners() {
  if (stopping_) return;
  // Arming only waits for readability: nothing starts here.
  Clock::time_point now = Clock::now();
  bool still_held = false;
  for (auto& s : sockets_) {
    bool hold = false, looked = false;
    for (auto& l : s->listeners) {
      if (!l->held) continue;
      if (!looked) {
        hold = must_hold(*s, now);
        looked = true;
      }
      if (hold) {
        still_held = true;
        continue;
      }
      l->held = false;
      arm_listener(*l);
    }
  }
  if (still_held) arm_held_timer();
}

void Daemon::handle_connection(SocketState& socket, activation::Accepted&& conn,
                               Clock::time_point now) {
  const std::string peer_text = conn.peer.to_string();
  const bool ip_peer = conn.peer.is_inet();
  policy::IpAddress peer_ip =
      ip_peer ? to_policy_address(conn.peer) : unix_peer_address(conn.fd.get());
  RandomAdapter random(rng_);
  policy::Decision decision = admission_->admit(socket.policy_id, peer_ip, now, random, ip_peer);
  if (!decision.admitted()) {
    if (!socket.unit.drop_message.empty()) {
      // Best effort, never blocking: the socket is non-blocking and the message small.
      (void)::send(conn.fd.get(), socket.unit.drop_message.data(), socket.unit.drop_message.size(),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    socket.drop_log.drop(
        now,
        fmt::format("drop connection from [{}]:{} on [{}]:{} socket={} reason={} "
                    "startups={}",
                    conn.peer.ip_text(), conn.peer.port(), conn.local.ip_text(), conn.local.port(),
                    socket.unit.name, policy::to_string(*decision.reason), startups_text()),
        socket.unit.name);
    return;  // conn.fd closes here
  }

  ServicePlan& plan = *socket.service;
  ++socket.accept_counter;
  std::string name = instance_name(socket.unit.service, socket.accept_counter,
                                   activation::instance_part(conn.local, conn.peer, conn.fd.get()));

  activation::SpawnPlan spawn = plan.base;
  if (plan.instance_specifiers) {
    // The template names the instance (%i, %I, ...): instantiate it for this connection. Rare
    // in practice; the common templates (sshd -i, git daemon) skip this.
    std::string instance = name.substr(name.find('@') + 1);
    instance = instance.substr(0, instance.rfind('.'));
    std::vector<units::Diagnostic> diags;
    units::ServiceUnit unit = units::instantiate(plan.unit, instance, diags);
    auto specific = make_plan(unit, plan_context(), &plan);
    if (!specific) {
      spawn_failed(socket.unit.name, name, peer_text, decision.instance,
                   Error{EINVAL, specific.error().message}, now);
      return;
    }
    spawn = (*specific)->base;
  }

  UniqueFd capture_daemon_end, capture_child_end;
  if (plan.captures_output()) {
    auto pair = activation::make_record_pipe();
    if (!pair) {
      // Counted and logged like any failed spawn; EMFILE here pauses the listeners too.
      spawn_failed(socket.unit.name, name, peer_text, decision.instance, pair.error(), now);
      return;
    }
    capture_daemon_end = std::move(pair->first);
    capture_child_end = std::move(pair->second);
  }
  std::optional<std::pair<std::string, unsigned>> remote;
  if (conn.peer.is_inet()) remote.emplace(conn.peer.ip_text(), conn.peer.port());
  spawn = connection_spawn(plan, std::move(spawn),
                           {conn.fd.get(), capture_child_end.get(), dev_null_.get()},
                           std::move(remote), socket.unit.file_descriptor_name);
  PendingSpawn pending;
  pending.plan = socket.service;
  pending.socket = socket.unit.name;
  pending.name = std::move(name);
  pending.peer = peer_text;
  if (conn.peer.is_inet()) pending.remote_ip = conn.peer.ip_text();
  pending.admission = decision.instance;
  pending.accepted_at = now;
  pending.output = std::move(capture_daemon_end);
  prepare_runtime_directories(plan, pending.name);
  launch_connection(std::move(pending), std::move(spawn), socket.launch_group);
  // usherd's copies of the connection and of the capture's child end close here: the child
  // has its own (its fd table was copied at the clone).
}

}  // namespace usherd::supervisor

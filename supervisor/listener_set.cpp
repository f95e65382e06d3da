#include "supervisor/listener_set.h"

#include <cstring>

#include <spdlog/spdlog.h>

#include "activation/listener.h"
#include "supervisor/convert.h"

namespace usherd::supervisor {
namespace {

constexpr auto kPauseOnExhaustion = std::chrono::milliseconds(250);

}  // namespace

bool Socket::held() const {
  for (const auto& l : listeners)
    if (l->held) return true;
  return false;
}

std::vector<int> Socket::fds() const {
  std::vector<int> out;
  for (const auto& l : listeners)
    if (l->fd) out.push_back(l->fd->native_handle());
  return out;
}

Socket* ListenerSet::find(const std::string& name) {
  for (auto& s : sockets_)
    if (s->unit.name == name) return s.get();
  return nullptr;
}

void ListenerSet::open(Socket& socket, Reuse& reuse) {
  for (const auto& address : socket.unit.listen) {
    activation::ListenSpec spec = to_listen_spec(socket.unit, address);
    std::string key = listen_key(spec);
    auto listener = std::make_unique<Listener>();
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
      spdlog::info("listen socket={} address={} accept={} from=service-manager", socket.unit.name,
                   listener->bound, socket.unit.accept ? "yes" : "no");
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

void ListenerSet::arm(Listener& listener) {
  if (listener.waiting || listener.paused || closed_ || !listener.fd) return;
  listener.waiting = true;
  Listener* self = &listener;
  listener.fd->async_wait(asio::posix::stream_descriptor::wait_read,
                          [this, self](const boost::system::error_code& ec) {
                            // Cancelled by a reload, which may already have freed this state
                            // (its fd lives on in a new one), or by shutdown: touch nothing.
                            if (ec == asio::error::operation_aborted) return;
                            self->waiting = false;
                            if (ec) return;
                            readable_(*self);
                          });
}

void ListenerSet::arm_all(Socket& socket) {
  for (auto& l : socket.listeners) arm(*l);
}

void ListenerSet::pause(Listener& listener, int error) {
  listener.paused = true;
  exhausted_ = true;
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
  Listener* self = &listener;
  listener.pause_timer->async_wait([this, self](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: resumed early, or closed
    self->paused = false;
    arm(*self);
  });
}

void ListenerSet::pause_all(Socket& socket, int error) {
  for (auto& l : socket.listeners)
    if (!l->paused) pause(*l, error);
}

void ListenerSet::accepted(Listener& listener) {
  if (!listener.exhausted_since) return;
  spdlog::warn("accept socket={} address={} resumed after {:.1f}s ({} pauses)",
               listener.owner->unit.name, listener.bound,
               std::chrono::duration<double>(Clock::now() - *listener.exhausted_since).count(),
               listener.exhausted_pauses);
  listener.exhausted_since.reset();
  listener.exhausted_pauses = 0;
}

void ListenerSet::resume_exhausted() {
  if (!exhausted_ || closed_) return;
  exhausted_ = false;
  for (auto& s : sockets_) {
    for (auto& l : s->listeners) {
      if (!l->paused || !l->exhausted_since) continue;
      l->paused = false;
      if (l->pause_timer) l->pause_timer->cancel();
      arm(*l);
    }
  }
}

void ListenerSet::hold(Listener& listener) {
  listener.held = true;
  arm_held_timer();
}

void ListenerSet::arm_held_timer() {
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
    release_held();
  });
}

void ListenerSet::release_held() {
  if (closed_) return;
  // Arming only waits for readability: nothing starts here.
  Clock::time_point now = Clock::now();
  bool still_held = false;
  for (auto& s : sockets_) {
    bool hold = false, looked = false;
    for (auto& l : s->listeners) {
      if (!l->held) continue;
      if (!looked) {
        hold = must_hold_(*s, now);
        looked = true;
      }
      if (hold) {
        still_held = true;
        continue;
      }
      l->held = false;
      arm(*l);
    }
  }
  if (still_held) arm_held_timer();
}

void ListenerSet::close_all() {
  closed_ = true;
  for (auto& s : sockets_) {
    for (auto& l : s->listeners) {
      if (l->pause_timer) l->pause_timer->cancel();
      l->fd.reset();  // closes: no new connections
    }
  }
}

}  // namespace usherd::supervisor

// What operators see: status (JSON and text), the instance list, Prometheus metrics, and
// the control socket that serves them to usherctl (and the optional HTTP /metrics).
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>

#include "supervisor/control_protocol.h"
#include "supervisor/convert.h"
#include "supervisor/daemon.h"
#include "supervisor/http_metrics.h"

namespace usherd::supervisor {
namespace {

/// How long the control socket waits before accepting again when usherd is out of fds.
constexpr auto kControlPause = std::chrono::milliseconds(250);

double age_seconds(Clock::time_point started, Clock::time_point now) {
  return std::chrono::duration<double>(now - started).count();
}

const char* state_word(Instance::State state) {
  switch (state) {
    case Instance::State::starting:
      return "starting";
    case Instance::State::running:
      return "running";
    case Instance::State::stopping:
      return "stopping";
  }
  return "unknown";
}

/// One control connection: read the request until EOF (bounded in size and time), answer,
/// then drain. Every path ends in the answer being written or the deadline closing the socket.
struct ControlConnection {
  ControlConnection(asio::io_context& io, int fd) : socket(io, fd), deadline(io) {}
  asio::posix::stream_descriptor socket;
  asio::steady_timer deadline;
  std::string request;
  std::string answer;
  char buf[4096];
};

void drain_control(const std::shared_ptr<ControlConnection>& conn) {
  conn->socket.async_read_some(asio::buffer(conn->buf),
                               [conn](const boost::system::error_code& ec, std::size_t) {
                                 if (ec) {
                                   conn->deadline.cancel();
                                   return;
                                 }
                                 drain_control(conn);
                               });
}

void send_answer(const std::shared_ptr<ControlConnection>& conn, std::string answer) {
  conn->answer = std::move(answer);
  conn->request.clear();
  asio::async_write(conn->socket, asio::buffer(conn->answer),
                    [conn](const boost::system::error_code& e, std::size_t) {
                      if (e) {
                        // The client went away: free the connection now, not at the deadline.
                        conn->deadline.cancel();
                        return;
                      }
                      // Half-close, then drain what the client may still be sending (an
                      // oversized request, or a refused peer's): closing with unread data
                      // would reset the connection and lose the answer. The deadline still
                      // bounds this.
                      ::shutdown(conn->socket.native_handle(), SHUT_WR);
                      drain_control(conn);
                    });
}

}  // namespace

StatusSnapshot Daemon::snapshot(Clock::time_point now) const {
  StatusSnapshot out;
  out.startups = admission_->startups();
  out.limits = admission_->config().max_startups;
  out.penalised_sources = admission_->penalised_sources(now).size();
  out.uptime_s = age_seconds(started_at_, now);
  out.pid = ::getpid();
  out.reloads = reloads_;
  out.notify_rejected = notify_rejected_;
  out.startups_unknown = startups_unknown_;
  out.startup_timeouts = startup_timeouts_;
  out.spawn_failures = spawn_failures_;
  out.launches_stalled = stalled_launches();
  out.control_answered = control_answered_;
  out.control_refused = control_refused_;
  out.metrics_listen = metrics_bound_;
  out.spawn_seconds = spawn_seconds_;
  for (const auto& s : sockets_) {
    SocketSnapshot so;
    so.name = s->unit.name;
    so.service = s->unit.service;
    for (const auto& l : s->listeners) {
      so.listen.push_back(l->bound);
      so.held = so.held || l->held;
    }
    so.accept = s->unit.accept;
    so.stats = admission_->socket_stats(s->policy_id).value_or(policy::SocketStats{});
    if (!s->unit.accept) {
      static constexpr const char* phases[] = {"idle",    "pre",      "main",        "post",
                                               "running", "stopping", "restart-wait"};
      so.service_state = phases[static_cast<int>(s->run.phase)];
    }
    if (auto it = startup_seconds_.find(s->unit.name); it != startup_seconds_.end())
      so.startup_seconds = it->second;
    out.sockets.push_back(std::move(so));
  }
  for (const auto& [key, inst] : instances_) {
    if (inst->role == Instance::Role::service_helper) continue;
    InstanceSnapshot o;
    o.id = inst->name;
    o.socket = inst->socket;
    o.service = inst->plan ? inst->plan->unit.name : std::string();
    o.pid = inst->pid;
    o.peer = inst->peer;
    o.state = state_word(inst->state);
    if (inst->ready_via) o.ready_via = inst->ready_via;
    o.age_s = age_seconds(inst->started, now);
    o.adopted = inst->adopted;
    out.instances.push_back(std::move(o));
  }
  out.tracked = instances_.size();
  return out;
}

void Daemon::start_control() {
  std::string path = options_.runtime_dir + "/control";
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (!fd || path.size() >= sizeof addr.sun_path) {
    spdlog::error("control socket {}: cannot create", path);
    return;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Created 0600 from the start (umask), so there is no window in which others may connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(fd.get(), 64) != 0) {
    spdlog::error("control socket {}: {}", path, std::strerror(errno));
    return;
  }
  control_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd.release());
  arm_control();
}

void Daemon::arm_control() {
  control_->async_wait(
      asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec) return;
        for (int i = 0; i < 16; ++i) {
          int fd =
              ::accept4(control_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (fd < 0) {
            if (!activation::is_resource_exhaustion(errno)) break;
            // Out of fds: the request stays queued and the socket readable, so re-arming
            // now would spin. Retry after a pause (the accept listeners log the episode).
            spdlog::debug("control accept paused for {}ms: {}", kControlPause.count(),
                          std::strerror(errno));
            auto pause = std::make_shared<asio::steady_timer>(io_, kControlPause);
            pause->async_wait([this, pause](const boost::system::error_code& e) {
              if (!e) arm_control();
            });
            return;
          }
          auto conn = std::make_shared<ControlConnection>(io_, fd);
          conn->deadline.expires_after(kRequestDeadline);
          conn->deadline.async_wait([this, conn](const boost::system::error_code& e) {
            if (e) return;
            if (conn->answer.empty()) {
              ++control_refused_;
              std::string answer = control_error("request not completed in time");
              (void)::send(conn->socket.native_handle(), answer.data(), answer.size(),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            boost::system::error_code ignored;
            conn->socket.close(ignored);
          });
          ucred cred{};
          socklen_t len = sizeof cred;
          if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
              (cred.uid != 0 && cred.uid != ::geteuid())) {
            // The socket is 0600, so only a loosened mode lets anyone else this far.
            ++control_refused_;
            spdlog::warn("refuse control connection uid={} pid={}", cred.uid, cred.pid);
            send_answer(conn, control_error("permission denied: the control socket is for root"));
            continue;
          }
          read_control(conn);
        }
        arm_control();
      });
}

void Daemon::read_control(std::shared_ptr<void> opaque) {
  auto conn = std::static_pointer_cast<ControlConnection>(opaque);
  conn->socket.async_read_some(asio::buffer(conn->buf),
                               [this, conn](const boost::system::error_code& ec, std::size_t n) {
                                 if (ec && ec != asio::error::eof) {
                                   conn->deadline.cancel();
                                   return;
                                 }
                                 conn->request.append(conn->buf, n);
                                 bool too_large = conn->request.size() > kMaxRequest;
                                 if (!ec && !too_large) {
                                   read_control(conn);
                                   return;
                                 }
                                 send_answer(conn, answer_control(conn->request));
                               });
}

std::string Daemon::answer_control(std::string_view body) {
  auto ok = [this](const boost::json::value& result) {
    ++control_answered_;
    return control_ok(result);
  };
  auto refuse = [this](std::string_view message) {
    ++control_refused_;
    return control_error(message);
  };
  ControlRequest request = parse_control_request(body);
  if (!request.error.empty()) return refuse(request.error);
  Clock::time_point now = Clock::now();
  switch (request.command) {
    case ControlCommand::status:
      return ok(render_status_json(snapshot(now)));
    case ControlCommand::status_text:
      return ok(boost::json::value(render_status_text(snapshot(now))));
    case ControlCommand::list:
      return ok(render_list_json(snapshot(now)));
    case ControlCommand::metrics:
      return ok(boost::json::value(render_metrics(snapshot(now))));
    case ControlCommand::reload: {
      auto [done, report] = reload();
      return done ? ok(boost::json::value(report)) : refuse(report);
    }
    case ControlCommand::stop:
      if (!stop_instance(request.id)) return refuse("no instance " + request.id);
      return ok(boost::json::value("stopping " + request.id));
  }
  return refuse("unknown command");
}

void Daemon::start_metrics_listener() {
  if (!daemon_config_.metrics_listen) return;
  units::SocketUnit pseudo;
  pseudo.name = "metrics";
  activation::ListenSpec spec = to_listen_spec(pseudo, *daemon_config_.metrics_listen);
  auto listener = activation::open_listener(spec);
  if (!listener) {
    spdlog::error("metrics listen address={}: {}", daemon_config_.metrics_listen->text,
                  listener.error().to_string());
    return;
  }
  spdlog::info("metrics listen address={} path=/metrics", listener->bound);
  metrics_bound_ = listener->bound;
  metrics_ = std::make_unique<HttpMetrics>(
      io_, std::move(listener->fd), [this] { return render_metrics(snapshot(Clock::now())); });
}

}  // namespace usherd::supervisor

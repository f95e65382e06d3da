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

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
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

boost::json::object Daemon::status_json(Clock::time_point now) const {
  boost::json::object out;
  out["version"] = 1;
  const auto& ms = admission_->config().max_startups;
  boost::json::object startups;
  startups["current"] = admission_->startups().current;
  startups["peak"] = admission_->startups().peak;
  startups["start"] = ms.start;
  startups["rate"] = ms.rate;
  startups["full"] = ms.full;
  out["startups"] = startups;
  out["penalised_sources"] = admission_->penalised_sources(now).size();
  out["uptime_s"] = age_seconds(started_at_, now);
  out["pid"] = static_cast<std::int64_t>(::getpid());
  out["reloads"] = reloads_;
  out["notify_rejected"] = notify_rejected_;
  out["startups_unknown"] = startups_unknown_;
  out["launches_stalled"] = stalled_launches();
  boost::json::object control;
  control["answered"] = control_answered_;
  control["refused"] = control_refused_;
  out["control_requests"] = control;
  if (!metrics_bound_.empty()) out["metrics_listen"] = metrics_bound_;
  boost::json::array sockets;
  for (const auto& s : sockets_) {
    boost::json::object so;
    so["name"] = s->unit.name;
    so["service"] = s->unit.service;
    boost::json::array listen;
    for (const auto& l : s->listeners) listen.emplace_back(l->bound);
    so["listen"] = listen;
    so["accept"] = s->unit.accept;
    bool held = false;
    for (const auto& l : s->listeners) held = held || l->held;
    so["held"] = held;
    const policy::SocketStats& st =
        admission_->socket_stats(s->policy_id).value_or(policy::SocketStats{});
    so["accepted"] = st.accepted;
    so["admitted"] = st.admitted;
    boost::json::object dropped;
    for (std::size_t i = 0; i < policy::kDropReasonCount; ++i)
      if (st.dropped[i] > 0)
        dropped[policy::to_string(static_cast<policy::DropReason>(i))] = st.dropped[i];
    so["dropped"] = dropped;
    so["startups"] = st.startups;
    so["instances"] = st.instances;
    if (!s->unit.accept) {
      static constexpr const char* phases[] = {"idle",    "pre",      "main",        "post",
                                               "running", "stopping", "restart-wait"};
      so["service_state"] = phases[static_cast<int>(s->run.phase)];
    }
    sockets.push_back(std::move(so));
  }
  out["sockets"] = sockets;
  out["instances"] = list_json(now)["instances"];
  return out;
}

boost::json::object Daemon::list_json(Clock::time_point now) const {
  boost::json::array list;
  for (const auto& [key, inst] : instances_) {
    if (inst->role == Instance::Role::service_helper) continue;
    boost::json::object o;
    o["id"] = inst->name;
    o["socket"] = inst->socket;
    o["service"] = inst->plan ? inst->plan->unit.name : std::string();
    o["pid"] = inst->pid;
    o["peer"] = inst->peer.empty() ? boost::json::value(nullptr) : boost::json::value(inst->peer);
    o["state"] = state_word(inst->state);
    o["ready_via"] =
        inst->ready_via ? boost::json::value(inst->ready_via) : boost::json::value(nullptr);
    o["age_s"] = age_seconds(inst->started, now);
    o["adopted"] = inst->adopted;
    list.push_back(std::move(o));
  }
  boost::json::object out;
  out["instances"] = list;
  return out;
}

std::string Daemon::status_text(Clock::time_point now) const {
  const auto& ms = admission_->config().max_startups;
  std::string out =
      fmt::format("usherd: startups {} of {} (peak {}), {} instances, {} penalised sources\n",
                  admission_->startups().current, ms.to_string(), admission_->startups().peak,
                  instances_.size(), admission_->penalised_sources(now).size());
  for (const auto& s : sockets_) {
    const policy::SocketStats& st =
        admission_->socket_stats(s->policy_id).value_or(policy::SocketStats{});
    std::vector<std::string> listen;
    for (const auto& l : s->listeners) listen.push_back(l->bound);
    bool held = false;
    for (const auto& l : s->listeners) held = held || l->held;
    out += fmt::format("* {} -> {} (accept={})\n    listen: {}{}\n", s->unit.name, s->unit.service,
                       s->unit.accept ? "yes" : "no", fmt::join(listen, " "),
                       held ? " (held: children still before execve)" : "");
    std::string drops;
    for (std::size_t i = 0; i < policy::kDropReasonCount; ++i)
      if (st.dropped[i] > 0)
        drops += fmt::format(" {}={}", policy::to_string(static_cast<policy::DropReason>(i)),
                             st.dropped[i]);
    out += fmt::format("    accepted {}, admitted {}, dropped {}{}\n", st.accepted, st.admitted,
                       st.dropped_total(), drops.empty() ? "" : " (" + drops.substr(1) + ")");
    out += fmt::format("    startups {}, instances {}\n", st.startups, st.instances);
  }
  return out;
}

std::string Daemon::metrics_text(Clock::time_point now) const {
  std::string out;
  const auto& ms = admission_->config().max_startups;
  out += "# HELP usherd_startups Instances that have not signalled readiness yet, all sockets.\n";
  out += "# TYPE usherd_startups gauge\n";
  out += fmt::format("usherd_startups {}\n", admission_->startups().current);
  out += "# HELP usherd_startups_peak High-water mark of usherd_startups since start.\n";
  out += "# TYPE usherd_startups_peak gauge\n";
  out += fmt::format("usherd_startups_peak {}\n", admission_->startups().peak);
  out += "# HELP usherd_startups_limit The global MaxStartups bounds.\n";
  out += "# TYPE usherd_startups_limit gauge\n";
  out += fmt::format("usherd_startups_limit{{bound=\"start\"}} {}\n", ms.start);
  out += fmt::format("usherd_startups_limit{{bound=\"full\"}} {}\n", ms.full);
  out += "# HELP usherd_connections_total Connections accepted, by socket and result.\n";
  out += "# TYPE usherd_connections_total counter\n";
  for (const auto& s : sockets_) {
    const auto& st = admission_->socket_stats(s->policy_id).value_or(policy::SocketStats{});
    std::string sock = escape_label(s->unit.name);
    out += fmt::format("usherd_connections_total{{socket=\"{}\",result=\"admitted\"}} {}\n", sock,
                       st.admitted);
    out += fmt::format("usherd_connections_total{{socket=\"{}\",result=\"dropped\"}} {}\n", sock,
                       st.dropped_total());
  }
  out += "# HELP usherd_drops_total Connections dropped, by socket and reason.\n";
  out += "# TYPE usherd_drops_total counter\n";
  for (const auto& s : sockets_) {
    const auto& st = admission_->socket_stats(s->policy_id).value_or(policy::SocketStats{});
    for (std::size_t i = 0; i < policy::kDropReasonCount; ++i)
      out += fmt::format("usherd_drops_total{{socket=\"{}\",reason=\"{}\"}} {}\n",
                         escape_label(s->unit.name),
                         policy::to_string(static_cast<policy::DropReason>(i)), st.dropped[i]);
  }
  out += "# HELP usherd_instances Live instances, by socket and state.\n";
  out += "# TYPE usherd_instances gauge\n";
  std::map<std::pair<std::string, std::string>, unsigned> by_state;
  for (const auto& s : sockets_)
    for (const char* st : {"starting", "running", "stopping"}) by_state[{s->unit.name, st}] = 0;
  for (const auto& [key, inst] : instances_)
    if (inst->role != Instance::Role::service_helper)
      ++by_state[{inst->socket, state_word(inst->state)}];
  for (const auto& [k, n] : by_state)
    out += fmt::format("usherd_instances{{socket=\"{}\",state=\"{}\"}} {}\n", escape_label(k.first),
                       k.second, n);
  out += "# HELP usherd_startup_duration_seconds Time from accept to readiness.\n";
  out += "# TYPE usherd_startup_duration_seconds histogram\n";
  for (const auto& s : sockets_) {
    auto it = startup_seconds_.find(s->unit.name);
    Histogram empty;
    (it == startup_seconds_.end() ? empty : it->second)
        .render(out, "usherd_startup_duration_seconds",
                fmt::format("socket=\"{}\"", escape_label(s->unit.name)));
  }
  out +=
      "# HELP usherd_startups_unknown_total Adopted instances whose readiness channel was lost "
      "in a restart: startup ended as unknown.\n";
  out += "# TYPE usherd_startups_unknown_total counter\n";
  out += fmt::format("usherd_startups_unknown_total {}\n", startups_unknown_);
  out += "# HELP usherd_startup_timeouts_total Instances stopped by the startup timeout.\n";
  out += "# TYPE usherd_startup_timeouts_total counter\n";
  out += fmt::format("usherd_startup_timeouts_total {}\n", startup_timeouts_);
  out += "# HELP usherd_socket_held Whether a socket's listeners wait for starting children.\n";
  out += "# TYPE usherd_socket_held gauge\n";
  for (const auto& s : sockets_) {
    bool held = false;
    for (const auto& l : s->listeners) held = held || l->held;
    out += fmt::format("usherd_socket_held{{socket=\"{}\"}} {}\n", escape_label(s->unit.name),
                       held ? 1 : 0);
  }
  out += "# HELP usherd_launches_stalled Children launched over 250 ms ago still before execve.\n";
  out += "# TYPE usherd_launches_stalled gauge\n";
  out += fmt::format("usherd_launches_stalled {}\n", stalled_launches());
  out += "# HELP usherd_spawn_failures_total Instances that could not be started.\n";
  out += "# TYPE usherd_spawn_failures_total counter\n";
  out += fmt::format("usherd_spawn_failures_total {}\n", spawn_failures_);
  out += "# HELP usherd_spawn_duration_seconds Time from accept to a successful exec.\n";
  out += "# TYPE usherd_spawn_duration_seconds histogram\n";
  spawn_seconds_.render(out, "usherd_spawn_duration_seconds", "");
  out += "# HELP usherd_penalised_sources Source blocks serving a penalty now.\n";
  out += "# TYPE usherd_penalised_sources gauge\n";
  out += fmt::format("usherd_penalised_sources {}\n", admission_->penalised_sources(now).size());
  out += "# HELP usherd_notify_rejected_total Notify datagrams not attributable to an instance.\n";
  out += "# TYPE usherd_notify_rejected_total counter\n";
  out += fmt::format("usherd_notify_rejected_total {}\n", notify_rejected_);
  out += "# HELP usherd_control_requests_total Control requests, by answer.\n";
  out += "# TYPE usherd_control_requests_total counter\n";
  out += fmt::format("usherd_control_requests_total{{result=\"ok\"}} {}\n", control_answered_);
  out += fmt::format("usherd_control_requests_total{{result=\"error\"}} {}\n", control_refused_);
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
      return ok(status_json(now));
    case ControlCommand::status_text:
      return ok(boost::json::value(status_text(now)));
    case ControlCommand::list:
      return ok(list_json(now));
    case ControlCommand::metrics:
      return ok(boost::json::value(metrics_text(now)));
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
  metrics_ = std::make_unique<HttpMetrics>(io_, std::move(listener->fd),
                                           [this] { return metrics_text(Clock::now()); });
}

}  // namespace usherd::supervisor

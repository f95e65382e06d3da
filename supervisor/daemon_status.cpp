// What operators see: status (JSON and text), the instance list, Prometheus metrics, and
// the control socket that serves them to usherctl (and the optional HTTP /metrics).
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

/// One control connection: read the request until EOF (bounded in size and time), answer.
struct ControlConnection;
void drain_control(const std::shared_ptr<ControlConnection>& conn);

struct ControlConnection : std::enable_shared_from_this<ControlConnection> {
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
    out += fmt::format("* {} -> {} (accept={})\n    listen: {}\n", s->unit.name, s->unit.service,
                       s->unit.accept ? "yes" : "no", fmt::join(listen, " "));
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
  out += "# HELP usherd_startup_timeouts_total Instances stopped by the startup timeout.\n";
  out += "# TYPE usherd_startup_timeouts_total counter\n";
  out += fmt::format("usherd_startup_timeouts_total {}\n", startup_timeouts_);
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
          if (fd < 0) break;
          UniqueFd owned(fd);
          ucred cred{};
          socklen_t len = sizeof cred;
          auto conn = std::make_shared<ControlConnection>(io_, owned.release());
          if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
              (cred.uid != 0 && cred.uid != ::geteuid())) {
            std::string answer = control_error("permission denied: the control socket is for root");
            (void)::send(fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            continue;  // closes
          }
          conn->deadline.expires_after(kRequestDeadline);
          conn->deadline.async_wait([conn](const boost::system::error_code& e) {
            if (e) return;
            if (!conn->answer.empty()) {
              boost::system::error_code ignored;
              conn->socket.close(ignored);
              return;
            }
            std::string answer = control_error("request not completed in time");
            (void)::send(conn->socket.native_handle(), answer.data(), answer.size(),
                         MSG_DONTWAIT | MSG_NOSIGNAL);
            boost::system::error_code ignored;
            conn->socket.close(ignored);
          });
          read_control(conn);
        }
        arm_control();
      });
}

void Daemon::read_control(std::shared_ptr<void> opaque) {
  auto conn = std::static_pointer_cast<ControlConnection>(opaque);
  conn->socket.async_read_some(
      asio::buffer(conn->buf), [this, conn](const boost::system::error_code& ec, std::size_t n) {
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
        conn->answer =
            too_large ? control_error("request too large") : answer_control(conn->request);
        conn->request.clear();
        asio::async_write(conn->socket, asio::buffer(conn->answer),
                          [conn](const boost::system::error_code& e, std::size_t) {
                            if (e) return;
                            // Half-close, then drain what the client may still be sending (an
                            // oversized request): closing with unread data would reset the
                            // connection and lose the answer. The deadline still bounds this.
                            ::shutdown(conn->socket.native_handle(), SHUT_WR);
                            drain_control(conn);
                          });
      });
}

std::string Daemon::answer_control(const std::string& body) {
  ControlRequest request = parse_control_request(body);
  if (!request.error.empty()) return control_error(request.error);
  Clock::time_point now = Clock::now();
  if (request.command == "status") return control_ok(status_json(now));
  if (request.command == "status-text") return control_ok(boost::json::value(status_text(now)));
  if (request.command == "list") return control_ok(list_json(now));
  if (request.command == "metrics") return control_ok(boost::json::value(metrics_text(now)));
  if (request.command == "reload") {
    auto [ok, report] = reload();
    return ok ? control_ok(boost::json::value(report)) : control_error(report);
  }
  if (request.command == "stop") {
    const boost::json::value* id = request.args.if_contains("id");
    if (id == nullptr || !id->is_string()) return control_error("stop needs an instance id");
    std::string name(id->as_string());
    if (!stop_instance(name)) return control_error("no instance " + name);
    return control_ok(boost::json::value("stopping " + name));
  }
  return control_error("unknown command " + request.command);
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

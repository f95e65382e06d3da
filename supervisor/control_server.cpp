#include "supervisor/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>

#include "activation/listener.h"
#include "base/unique_fd.h"
#include "supervisor/control_protocol.h"
#include "supervisor/convert.h"

namespace usherd::supervisor {
namespace {

namespace asio = boost::asio;

/// How long the control socket waits before accepting again when usherd is out of fds.
constexpr auto kControlPause = std::chrono::milliseconds(250);

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

ControlServer::ControlServer(asio::io_context& io, Handler handler)
    : io_(io), handler_(std::move(handler)) {}

ControlServer::~ControlServer() = default;

StatusSnapshot ControlServer::snapshot(Clock::time_point now) const {
  StatusSnapshot out = handler_.snapshot(now);
  out.control_answered = answered_;
  out.control_refused = refused_;
  out.metrics_listen = metrics_bound_;
  return out;
}

void ControlServer::start(const std::string& path) {
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
  socket_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd.release());
  arm();
}

void ControlServer::arm() {
  socket_->async_wait(
      asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec) return;
        for (int i = 0; i < 16; ++i) {
          int fd =
              ::accept4(socket_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (fd < 0) {
            if (!activation::is_resource_exhaustion(errno)) break;
            // Out of fds: the request stays queued and the socket readable, so re-arming
            // now would spin. Retry after a pause (the accept listeners log the episode).
            spdlog::debug("control accept paused for {}ms: {}", kControlPause.count(),
                          std::strerror(errno));
            auto pause = std::make_shared<asio::steady_timer>(io_, kControlPause);
            pause->async_wait([this, pause](const boost::system::error_code& e) {
              if (!e) arm();
            });
            return;
          }
          auto conn = std::make_shared<ControlConnection>(io_, fd);
          conn->deadline.expires_after(kRequestDeadline);
          conn->deadline.async_wait([this, conn](const boost::system::error_code& e) {
            if (e) return;
            if (conn->answer.empty()) {
              ++refused_;
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
            ++refused_;
            spdlog::warn("refuse control connection uid={} pid={}", cred.uid, cred.pid);
            send_answer(conn, control_error("permission denied: the control socket is for root"));
            continue;
          }
          read(conn);
        }
        arm();
      });
}

void ControlServer::read(std::shared_ptr<void> opaque) {
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
                                   read(conn);
                                   return;
                                 }
                                 send_answer(conn, answer(conn->request));
                               });
}

std::string ControlServer::answer(std::string_view body) {
  auto ok = [this](const boost::json::value& result) {
    ++answered_;
    return control_ok(result);
  };
  auto refuse = [this](std::string_view message) {
    ++refused_;
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
      auto [done, report] = handler_.reload();
      return done ? ok(boost::json::value(report)) : refuse(report);
    }
    case ControlCommand::stop:
      if (!handler_.stop(request.id)) return refuse("no instance " + request.id);
      return ok(boost::json::value("stopping " + request.id));
  }
  return refuse("unknown command");
}

void ControlServer::start_metrics(const std::optional<units::ListenAddress>& address) {
  if (!address) return;
  units::SocketUnit pseudo;
  pseudo.name = "metrics";
  activation::ListenSpec spec = to_listen_spec(pseudo, *address);
  auto listener = activation::open_listener(spec);
  if (!listener) {
    spdlog::error("metrics listen address={}: {}", address->text, listener.error().to_string());
    return;
  }
  spdlog::info("metrics listen address={} path=/metrics", listener->bound);
  metrics_bound_ = listener->bound;
  metrics_ = std::make_unique<HttpMetrics>(
      io_, std::move(listener->fd), [this] { return render_metrics(snapshot(Clock::now())); });
}

}  // namespace usherd::supervisor

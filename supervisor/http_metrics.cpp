#include "supervisor/http_metrics.h"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "activation/accept.h"

namespace usherd::supervisor {
namespace http = boost::beast::http;
namespace asio = boost::asio;

namespace {

/// What the sessions share with the listener: how many are live, the cached exposition, and
/// how to resume accepting once below the cap (cleared when the listener goes).
struct Shared {
  std::size_t live = 0;
  bool paused = false;
  std::function<void()> resume;
  std::function<std::string()> render;
  std::string cached;
  std::chrono::steady_clock::time_point rendered_at{};
  bool rendered = false;

  const std::string& exposition() {
    auto now = std::chrono::steady_clock::now();
    if (!rendered || now - rendered_at >= kRenderInterval) {
      cached = render();
      rendered_at = now;
      rendered = true;
    }
    return cached;
  }
};

struct Session : std::enable_shared_from_this<Session> {
  Session(asio::io_context& io, int fd, std::shared_ptr<Shared> shared_state)
      : stream(io), timer(io), shared(std::move(shared_state)) {
    boost::system::error_code ec;
    stream.socket().assign(asio::ip::tcp::v6(), fd, ec);
    ++shared->live;
  }
  ~Session() {
    --shared->live;
    if (shared->paused && shared->live < kMaxHttpSessions && shared->resume) {
      shared->paused = false;
      shared->resume();
    }
  }
  boost::beast::tcp_stream stream;
  asio::steady_timer timer;
  std::shared_ptr<Shared> shared;
  boost::beast::flat_buffer buffer{8192};
  http::request_parser<http::empty_body> parser;
  http::response<http::string_body> response;

  void start() {
    parser.header_limit(8192);
    stream.expires_after(std::chrono::seconds(5));
    auto self = shared_from_this();
    http::async_read(stream, buffer, parser, [self](boost::system::error_code ec, std::size_t) {
      if (ec) return;
      self->answer();
    });
  }

  void answer() {
    const auto& req = parser.get();
    response.version(req.version());
    response.keep_alive(false);
    if (req.method() != http::verb::get || req.target() != "/metrics") {
      response.result(http::status::not_found);
      response.set(http::field::content_type, "text/plain");
      response.body() = "usherd serves /metrics only\n";
    } else {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain; version=0.0.4");
      response.body() = shared->exposition();
    }
    response.prepare_payload();
    auto self = shared_from_this();
    http::async_write(stream, response, [self](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      self->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    });
  }
};

}  // namespace

struct HttpMetrics::Impl {
  Impl(asio::io_context& io_, UniqueFd fd, std::function<std::string()> r)
      : io(io_), listener(io_, fd.release()), pause(io_), shared(std::make_shared<Shared>()) {
    shared->render = std::move(r);
    shared->resume = [this] { arm(); };
  }
  ~Impl() { shared->resume = nullptr; }  // sessions may outlive the listener
  asio::io_context& io;
  asio::posix::stream_descriptor listener;
  asio::steady_timer pause;  ///< out of fds: accept again later, not at once (no spin)
  std::shared_ptr<Shared> shared;

  void arm() {
    listener.async_wait(
        asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
          if (ec) return;
          for (int i = 0; i < 16; ++i) {
            if (shared->live >= kMaxHttpSessions) {
              shared->paused = true;  // the last session to end resumes (~Session)
              return;
            }
            int fd =
                ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
              if (!activation::is_resource_exhaustion(errno)) break;
              pause.expires_after(std::chrono::milliseconds(250));
              pause.async_wait([this](const boost::system::error_code& e) {
                if (!e) arm();
              });
              return;
            }
            std::make_shared<Session>(io, fd, shared)->start();
          }
          arm();
        });
  }
};

HttpMetrics::HttpMetrics(asio::io_context& io, UniqueFd listener,
                         std::function<std::string()> render)
    : impl_(std::make_unique<Impl>(io, std::move(listener), std::move(render))) {
  impl_->arm();
}

HttpMetrics::~HttpMetrics() = default;

}  // namespace usherd::supervisor

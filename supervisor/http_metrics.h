// The optional HTTP endpoint for Prometheus ([Metrics] ListenStream= in usherd.conf, off by
// default): GET /metrics answers the same text as `usherctl metrics`. Boost.Beast parses the
// requests; connections are accepted with accept4(SOCK_CLOEXEC) like every other fd of the
// daemon, bounded in size and time, one request each. At most kMaxHttpSessions at once: at
// the cap the listener is not polled (the kernel's backlog keeps the rest) until one ends, so
// idle connections cannot take usherd's fds. The exposition is rendered at most once per
// kRenderInterval and served from that copy in between: a flood of scrapes costs the loop
// one render a second, not one per request.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::supervisor {

/// Sessions (connections) served at once.
inline constexpr std::size_t kMaxHttpSessions = 16;
/// The rendered exposition is reused for this long.
inline constexpr auto kRenderInterval = std::chrono::seconds(1);

class HttpMetrics {
 public:
  /// Serves render() on the listening socket fd (already bound and listening).
  HttpMetrics(boost::asio::io_context& io, UniqueFd listener, std::function<std::string()> render);
  ~HttpMetrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace usherd::supervisor

// The optional HTTP endpoint for Prometheus ([Metrics] ListenStream= in usherd.conf, off by
// default): GET /metrics answers the same text as `usherctl metrics`. Boost.Beast parses the
// requests; connections are accepted with accept4(SOCK_CLOEXEC) like every other fd of the
// daemon, bounded in size and time, one request each.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "base/unique_fd.h"

namespace usherd::supervisor {

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

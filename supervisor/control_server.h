// The control socket that usherctl talks to (one JSON request per connection, answered and
// closed; control_protocol.h), and the optional HTTP /metrics listener. Requests are
// bounded in size and time, and only root (or usherd's own user) is answered. What a
// request asks of the daemon goes through Handler; what it reads is a StatusSnapshot.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "supervisor/http_metrics.h"
#include "supervisor/status_snapshot.h"
#include "units/config.h"

namespace usherd::supervisor {

class ControlServer {
 public:
  using Clock = std::chrono::steady_clock;
  struct Handler {
    std::function<StatusSnapshot(Clock::time_point)> snapshot;
    /// Reloads; a report (what changed, or why it was refused) and success.
    std::function<std::pair<bool, std::string>()> reload;
    /// Stops one instance by name; false when there is none.
    std::function<bool(const std::string&)> stop;
  };

  ControlServer(boost::asio::io_context& io, Handler handler);
  ~ControlServer();

  /// Listens at path (mode 0600 from the start).
  void start(const std::string& path);
  /// Serves /metrics over HTTP at address, when usherd.conf names one.
  void start_metrics(const std::optional<units::ListenAddress>& address);

  std::uint64_t answered() const { return answered_; }
  std::uint64_t refused() const { return refused_; }
  /// The address /metrics is served at ("" for none).
  const std::string& metrics_address() const { return metrics_bound_; }
  /// A complete status snapshot, with this server's own counters filled in.
  StatusSnapshot snapshot(Clock::time_point now) const;

  /// The answer to one request body (exposed for tests).
  std::string answer(std::string_view body);

 private:
  void arm();
  void read(std::shared_ptr<void> connection);

  boost::asio::io_context& io_;
  Handler handler_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> socket_;
  std::unique_ptr<HttpMetrics> metrics_;
  std::string metrics_bound_;
  std::uint64_t answered_ = 0;  ///< control requests answered ok
  std::uint64_t refused_ = 0;   ///< answered with an error (bad, slow, not root)
};

}  // namespace usherd::supervisor

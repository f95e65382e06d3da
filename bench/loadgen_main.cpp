// loadgen: a bounded loopback TCP load generator for the super-server benchmarks.
//
// It opens N connections to one loopback address, at most C at a time, with one epoll loop
// and non-blocking sockets. Each connection is timed from connect() to EOF (the service
// replied and exited), and its reply is checked against --expect. It reports connections per
// second, latency percentiles (p50/p90/p99/max) and failures by kind, as a table and as JSON.
//
// Safety bounds, always on: the target must be a loopback address (127.0.0.0/8, ::1 or
// ::ffff:127.0.0.0/104), anything else is refused before any packet is sent; the run stops
// after N connections or after --time-limit seconds, whichever comes first; each connection
// times out after --timeout-ms.
//
// Exit status: 0 when every connection completed (and matched --expect, if given); 1 when
// some failed; 2 on a usage error or a refused target.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

/// Command-line settings of one run.
struct Options {
  long connections = 1000;            ///< N: connections to make in total
  long concurrency = 1;               ///< C: connections open at once
  double time_limit_s = 60;           ///< stop starting new connections after this long
  long timeout_ms = 5000;             ///< one connection's deadline from connect() to EOF
  std::optional<std::string> expect;  ///< the exact reply each connection must send
  std::string label = "loadgen";      ///< names the run in the table and the JSON
  std::string json_path;              ///< also write the JSON here ("-" = stdout)
  bool quiet = false;                 ///< no table on stdout
  std::string target;                 ///< HOST:PORT or [V6]:PORT
};

/// A resolved loopback target.
struct Target {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

/// One connection in flight, stored in a slot reused when the connection ends.
struct Conn {
  int fd = -1;
  unsigned generation = 0;
  bool connected = false;
  Clock::time_point started;
  std::string reply;
};

/// Parses HOST:PORT and accepts it only when it names a loopback address.
std::optional<Target> parse_loopback_target(const std::string& text, std::string& why) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = "expected [ADDRESS]:PORT";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      why = "expected HOST:PORT";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  long port_number = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || port_number < 1 || port_number > 65535) {
    why = "bad port '" + port + "'";
    return std::nullopt;
  }
  if (host == "localhost") host = "127.0.0.1";
  Target target;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) != 127) {
      why = host + " is not a loopback address (127.0.0.0/8)";
      return std::nullopt;
    }
    auto* sin = reinterpret_cast<sockaddr_in*>(&target.addr);
    sin->sin_family = AF_INET;
    sin->sin_addr = v4;
    sin->sin_port = htons(static_cast<uint16_t>(port_number));
    target.len = sizeof(sockaddr_in);
    return target;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    bool mapped_loopback = IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
    if (!IN6_IS_ADDR_LOOPBACK(&v6) && !mapped_loopback) {
      why = host + " is not a loopback address (::1)";
      return std::nullopt;
    }
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&target.addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = v6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port_number));
    target.len = sizeof(sockaddr_in6);
    return target;
  }
  why = "'" + host + "' is not a numeric loopback address";
  return std::nullopt;
}

/// Failure kind for a connect()/SO_ERROR errno, as a stable lowercase word.
std::string connect_failure(int err) {
  switch (err) {
    case ECONNREFUSED:
      return "connect-refused";
    case ETIMEDOUT:
      return "connect-timeout";
    case ECONNRESET:
      return "connect-reset";
    case EADDRNOTAVAIL:
      return "no-local-port";
    case EMFILE:
    case ENFILE:
      return "no-fd";
    default:
      return std::string("connect-") + std::strerror(err);
  }
}

/// Failure kind for a read() errno.
std::string read_failure(int err) {
  return err == ECONNRESET ? "reset" : std::string("read-") + std::strerror(err);
}

/// The value at quantile q (0..1) of sorted samples, nearest-rank.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

/// Escapes a string for a JSON string literal.
std::string json_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

/// Results of one run, accumulated by the loop.
struct Results {
  long started = 0;
  long ok = 0;
  long finished = 0;  ///< reached EOF (with or without the expected reply)
  std::map<std::string, long> failures;
  std::vector<double> latency_ms;  ///< of connections that reached EOF
  double elapsed_s = 0;
};

/// The epoll loop: keeps `concurrency` connections in flight until `connections` are done.
class Runner {
 public:
  Runner(const Options& options, const Target& target) : options_(options), target_(target) {}

  /// Runs to completion; returns false if epoll itself could not be set up.
  bool run(Results& results) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return false;
    slots_.resize(static_cast<size_t>(options_.concurrency));
    for (size_t i = 0; i < slots_.size(); ++i) free_.push_back(i);
    results.latency_ms.reserve(static_cast<size_t>(options_.connections));
    auto begin = Clock::now();
    auto stop_starting = begin + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(options_.time_limit_s));
    std::vector<epoll_event> events(slots_.size());
    while (true) {
      auto now = Clock::now();
      while (!free_.empty() && results.started < options_.connections && now < stop_starting) {
        start_one(free_.front(), now, results);
        free_.pop_front();
      }
      if (in_flight_ == 0) break;
      int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 10);
      if (n < 0 && errno != EINTR) return false;
      now = Clock::now();
      for (int i = 0; i < n; ++i) handle(events[static_cast<size_t>(i)], now, results);
      expire(now, results);
    }
    results.elapsed_s = std::chrono::duration<double>(Clock::now() - begin).count();
    ::close(epoll_fd_);
    return true;
  }

 private:
  static uint64_t key(size_t slot, unsigned generation) {
    return (static_cast<uint64_t>(generation) << 32) | slot;
  }

  void start_one(size_t slot, Clock::time_point now, Results& results) {
    ++results.started;
    Conn& conn = slots_[slot];
    conn.generation++;
    conn.connected = false;
    conn.reply.clear();
    conn.started = now;
    int fd = ::socket(target_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fail_slot(slot, connect_failure(errno), results, false);
      return;
    }
    conn.fd = fd;
    ++in_flight_;
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&target_.addr), target_.len);
    if (rc < 0 && errno != EINPROGRESS) {
      fail_slot(slot, connect_failure(errno), results, true);
      return;
    }
    conn.connected = rc == 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u64 = key(slot, conn.generation);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    deadlines_.push_back(
        {slot, conn.generation, now + std::chrono::milliseconds(options_.timeout_ms)});
  }

  void handle(const epoll_event& ev, Clock::time_point now, Results& results) {
    auto slot = static_cast<size_t>(ev.data.u64 & 0xffffffffu);
    auto generation = static_cast<unsigned>(ev.data.u64 >> 32);
    Conn& conn = slots_[slot];
    if (conn.fd < 0 || conn.generation != generation) return;
    if (!conn.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(conn.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail_slot(slot, connect_failure(err), results, true);
        return;
      }
      conn.connected = true;
      epoll_event mod{};
      mod.events = EPOLLIN | EPOLLRDHUP;
      mod.data.u64 = ev.data.u64;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &mod);
    }
    if ((ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0) return;
    char buf[4096];
    while (true) {
      ssize_t n = ::read(conn.fd, buf, sizeof buf);
      if (n > 0) {
        if (conn.reply.size() < 4096) conn.reply.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        finish_slot(slot, now, results);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      fail_slot(slot, read_failure(errno), results, true);
      return;
    }
  }

  void finish_slot(size_t slot, Clock::time_point now, Results& results) {
    Conn& conn = slots_[slot];
    ++results.finished;
    results.latency_ms.push_back(
        std::chrono::duration<double, std::milli>(now - conn.started).count());
    if (options_.expect && conn.reply != *options_.expect) {
      ++results.failures[conn.reply.empty() ? "eof-without-reply" : "wrong-reply"];
    } else {
      ++results.ok;
    }
    release(slot);
  }

  void fail_slot(size_t slot, const std::string& kind, Results& results, bool had_fd) {
    ++results.failures[kind];
    if (had_fd) {
      release(slot);
    } else {
      free_.push_back(slot);
    }
  }

  void release(size_t slot) {
    Conn& conn = slots_[slot];
    ::close(conn.fd);  // also removes it from the epoll set
    conn.fd = -1;
    --in_flight_;
    free_.push_back(slot);
  }

  void expire(Clock::time_point now, Results& results) {
    // Deadlines are pushed in start order with one fixed timeout, so the front is the oldest.
    while (!deadlines_.empty() && deadlines_.front().at <= now) {
      auto entry = deadlines_.front();
      deadlines_.pop_front();
      Conn& conn = slots_[entry.slot];
      if (conn.fd < 0 || conn.generation != entry.generation) continue;
      fail_slot(entry.slot, conn.connected ? "timeout" : "connect-timeout", results, true);
    }
    // Drop entries of connections that already ended so the queue stays bounded by N.
    while (!deadlines_.empty()) {
      const auto& front = deadlines_.front();
      const Conn& conn = slots_[front.slot];
      if (conn.fd >= 0 && conn.generation == front.generation) break;
      deadlines_.pop_front();
    }
  }

  struct Deadline {
    size_t slot;
    unsigned generation;
    Clock::time_point at;
  };

  const Options& options_;
  const Target& target_;
  int epoll_fd_ = -1;
  long in_flight_ = 0;
  std::vector<Conn> slots_;
  std::deque<size_t> free_;
  std::deque<Deadline> deadlines_;
};

/// The JSON report of one run (one line).
std::string to_json(const Options& options, const Results& results) {
  std::vector<double> sorted = results.latency_ms;
  std::sort(sorted.begin(), sorted.end());
  double mean = 0;
  for (double v : sorted) mean += v;
  if (!sorted.empty()) mean /= static_cast<double>(sorted.size());
  double rate =
      results.elapsed_s > 0 ? static_cast<double>(results.finished) / results.elapsed_s : 0;
  double ok_rate = results.elapsed_s > 0 ? static_cast<double>(results.ok) / results.elapsed_s : 0;
  long failed = 0;
  for (const auto& [kind, count] : results.failures) failed += count;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"label\":\"%s\",\"target\":\"%s\",\"n\":%ld,\"c\":%ld,\"started\":%ld,"
                "\"finished\":%ld,\"ok\":%ld,\"failed\":%ld,\"elapsed_s\":%.4f,"
                "\"conn_per_s\":%.1f,\"ok_per_s\":%.1f,\"latency_ms\":{\"p50\":%.3f,"
                "\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"failures\":{",
                json_escape(options.label).c_str(), json_escape(options.target).c_str(),
                options.connections, options.concurrency, results.started, results.finished,
                results.ok, failed, results.elapsed_s, rate, ok_rate, quantile(sorted, 0.5),
                quantile(sorted, 0.9), quantile(sorted, 0.99), sorted.empty() ? 0 : sorted.back(),
                mean);
  std::string out = buf;
  bool first = true;
  for (const auto& [kind, count] : results.failures) {
    out += first ? "" : ",";
    out += '"';
    out += json_escape(kind);
    out += "\":";
    out += std::to_string(count);
    first = false;
  }
  out += "}}";
  return out;
}

/// The human-readable table of one run.
void print_table(const Options& options, const Results& results) {
  std::vector<double> sorted = results.latency_ms;
  std::sort(sorted.begin(), sorted.end());
  double rate =
      results.elapsed_s > 0 ? static_cast<double>(results.finished) / results.elapsed_s : 0;
  std::printf("%-20s %6s %5s %8s %8s %10s %8s %8s %8s %8s\n", "label", "n", "c", "done", "ok",
              "conn/s", "p50ms", "p90ms", "p99ms", "maxms");
  std::printf("%-20s %6ld %5ld %8ld %8ld %10.1f %8.3f %8.3f %8.3f %8.3f\n", options.label.c_str(),
              options.connections, options.concurrency, results.finished, results.ok, rate,
              quantile(sorted, 0.5), quantile(sorted, 0.9), quantile(sorted, 0.99),
              sorted.empty() ? 0 : sorted.back());
  for (const auto& [kind, count] : results.failures) {
    std::printf("  failed %-24s %ld\n", kind.c_str(), count);
  }
}

void usage() {
  std::fprintf(stderr,
               "usage: loadgen [-n N] [-c C] [-t SECONDS] [-T TIMEOUT_MS] [-e REPLY] [-l LABEL]\n"
               "               [-j JSON_FILE|-] [-q] HOST:PORT\n"
               "  HOST must be a loopback address (127.0.0.0/8, ::1, localhost).\n"
               "  -e REPLY: the exact reply expected; C escapes \\n are understood.\n");
}

/// Turns the two-character escape "\n" into a newline, so "-e 'ok\n'" works from a shell.
std::string unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  int opt;
  while ((opt = ::getopt(argc, argv, "n:c:t:T:e:l:j:qh")) != -1) {
    switch (opt) {
      case 'n':
        options.connections = std::strtol(optarg, nullptr, 10);
        break;
      case 'c':
        options.concurrency = std::strtol(optarg, nullptr, 10);
        break;
      case 't':
        options.time_limit_s = std::strtod(optarg, nullptr);
        break;
      case 'T':
        options.timeout_ms = std::strtol(optarg, nullptr, 10);
        break;
      case 'e':
        options.expect = unescape(optarg);
        break;
      case 'l':
        options.label = optarg;
        break;
      case 'j':
        options.json_path = optarg;
        break;
      case 'q':
        options.quiet = true;
        break;
      default:
        usage();
        return 2;
    }
  }
  if (optind + 1 != argc || options.connections < 1 || options.concurrency < 1 ||
      options.time_limit_s <= 0 || options.timeout_ms < 1) {
    usage();
    return 2;
  }
  options.target = argv[optind];
  options.concurrency = std::min(options.concurrency, options.connections);
  std::string why;
  auto target = parse_loopback_target(options.target, why);
  if (!target) {
    std::fprintf(stderr, "loadgen: refusing target %s: %s\n", options.target.c_str(), why.c_str());
    return 2;
  }
  // Each connection needs one fd; raise the soft limit towards the hard one when C is large.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < static_cast<rlim_t>(options.concurrency) + 64) {
    limit.rlim_cur =
        std::min<rlim_t>(limit.rlim_max, static_cast<rlim_t>(options.concurrency) + 64);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  Results results;
  Runner runner(options, *target);
  if (!runner.run(results)) {
    std::perror("loadgen: epoll");
    return 2;
  }
  if (results.started < options.connections) {
    results.failures["not-started-time-limit"] += options.connections - results.started;
  }
  if (!options.quiet) print_table(options, results);
  std::string json = to_json(options, results);
  if (options.json_path == "-") {
    std::printf("%s\n", json.c_str());
  } else if (!options.json_path.empty()) {
    FILE* out = std::fopen(options.json_path.c_str(), "a");
    if (out == nullptr) {
      std::perror("loadgen: json file");
      return 2;
    }
    std::fprintf(out, "%s\n", json.c_str());
    std::fclose(out);
  }
  return results.failures.empty() ? 0 : 1;
}

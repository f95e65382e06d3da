#include "supervisor/connection_path.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "activation/ready_log.h"
#include "activation/runtime_dir.h"
#include "activation/tcp_progress.h"
#include "policy/stall.h"
#include "supervisor/convert.h"
#include "supervisor/host_status.h"
#include "supervisor/instance_life.h"
#include "supervisor/logging.h"
#include "units/loader.h"

namespace usherd::supervisor {
namespace {

constexpr int kAcceptBatch = 64;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What the state file records to recognise the process after a restart: the pidfd's inode
// (one fstat) where the kernel has pidfs, else the start time from /proc (an open, a read
// and a close, and procfs's lookups: the costliest step of a spawn after clone).
void identify(Instance& instance) {
  if (auto inode = activation::pidfd_inode(instance.pidfd.get()); inode && *inode) {
    instance.pidfd_inode = *inode;
  } else if (auto st = activation::process_start_time(instance.pid)) {
    instance.start_time = *st;
  }
}

// The client has closed (FIN with nothing sent, or a reset): one peek, never blocking. Bytes
// waiting (an SSH banner) stay for the instance.
bool client_gone(int fd) {
  char byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

std::int64_t whole_seconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() + 1;
}

// A service whose instances are sshd: its drops and penalties are also logged in sshd's own
// words, which fail2ban's and CrowdSec's sshd parsers read.
bool runs_sshd(const Socket& socket) {
  return socket.service && socket.service->unit.effective_exit_status_outcomes() ==
                               policy::ExitStatusOutcomes::openssh;
}

}  // namespace

ConnectionPath::ConnectionPath(asio::io_context& io, InstanceTable& instances,
                               ReadinessMonitor& readiness, ListenerSet& listeners,
                               HostStatus& host, PlanContext plan_context, int dev_null)
    : io_(io),
      instances_(instances),
      readiness_(readiness),
      listeners_(listeners),
      host_(host),
      plan_context_(std::move(plan_context)),
      dev_null_(dev_null),
      rng_(std::random_device{}()),
      room_timer_(io) {
  watch_parked();
}

void ConnectionPath::configure(const units::DaemonConfig& config) {
  if (!admission_)
    admission_ = std::make_unique<policy::AdmissionEngine>(to_admission_config(config));
  else
    admission_->reconfigure(to_admission_config(config));
  max_startups_text_ = admission_->config().max_startups.to_string();
  default_startup_timeout_ = config.startup_timeout;
  queue_room();  // new limits may give parked connections their turn
}

std::string ConnectionPath::startups_text() const {
  return fmt::format("{}/{}", admission_->startups().current, max_startups_text_);
}

const Histogram* ConnectionPath::startup_seconds(const std::string& socket) const {
  auto it = startup_seconds_.find(socket);
  return it == startup_seconds_.end() ? nullptr : &it->second;
}

Clock::duration ConnectionPath::startup_timeout(const Socket& socket) const {
  return to_timer_duration(socket.unit.startup_timeout.value_or(default_startup_timeout_));
}

void ConnectionPath::drain(Listener& listener) {
  Socket& socket = *listener.owner;
  bool rearm = true;
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (must_hold(socket, Clock::now())) {
      listeners_.hold(listener);
      rearm = false;
      break;
    }
    auto conn = activation::accept_connection(listener.fd->native_handle(), listener.fixed_local);
    if (!conn) {
      int error = conn.error().code;
      if (error == EAGAIN || error == EWOULDBLOCK) break;
      if (is_fd_exhaustion(error)) {
        listeners_.pause(listener, error);
        break;
      }
      // ECONNABORTED, EPROTO, EPERM (firewall), network errors on the new socket: that
      // connection is gone; the listener is fine.
      spdlog::debug("accept socket={} error: {}", socket.unit.name, conn.error().to_string());
      continue;
    }
    listeners_.accepted(listener);
    handle(socket, std::move(*conn), Clock::now());
    if (listener.paused) break;  // out of fds or processes: resumed by its timer
  }
  finish_launches();
  // Not while paused (out of fds: resumed by its timer or an instance's end); arm() checks.
  if (rearm) listeners_.arm(listener);
}

bool ConnectionPath::must_hold(const Socket& socket, Clock::time_point now) {
  // The common case costs one look: fewer than kMaxStarting children before execve at all.
  if (launcher_.starting() < kMaxStarting) return false;
  // A socket's own children count as long as they are before their execve; every other
  // socket's only while they still make progress.
  std::size_t counted = launcher_.starting_since(now - kStallAfter);
  if (counted >= kMaxStarting) return true;
  for (const auto& stalled : launcher_.launched_before(now - kStallAfter))
    if (stalled.group == socket.launch_group) ++counted;
  return counted >= kMaxStarting;
}

std::size_t ConnectionPath::stalled_launches() const {
  return launcher_.launched_before(Clock::now() - kStallAfter).size();
}

void ConnectionPath::handle(Socket& socket, activation::Accepted&& conn, Clock::time_point now) {
  const bool ip_peer = conn.peer.is_inet();
  policy::IpAddress peer_ip =
      ip_peer ? to_policy_address(conn.peer) : unix_peer_address(conn.fd.get());
  if (socket.service->declares_readiness && client_gone(conn.fd.get())) {
    // Closed before usherd got to it (a connect-and-close storm, or a client that gave up
    // while the accept queue was long): a service that must hear from its client could never
    // become ready, and starting it would only spend a startup slot and a core on an EOF.
    drop(socket, conn, admission_->refuse_closed(socket.policy_id, peer_ip, now, ip_peer), peer_ip,
         now);
    return;
  }
  RandomAdapter random(rng_);
  policy::Decision decision = admission_->admit(socket.policy_id, peer_ip, now, random, ip_peer);
  if (decision.pushed_out) leave_room(*decision.pushed_out, now);
  if (decision.is_parked()) {
    park(socket, std::move(conn), *decision.ticket);
    reclaim_stalled(now);
  } else if (decision.admitted()) {
    start(socket, std::move(conn), *decision.instance, now);
  } else {
    drop(socket, conn, decision, peer_ip, now);
  }  // a dropped connection's fd closes here
}

void ConnectionPath::drop(Socket& socket, const activation::Accepted& conn,
                          const policy::Decision& decision, const policy::IpAddress& peer,
                          Clock::time_point now) {
  if (!socket.unit.drop_message.empty()) {
    // Best effort, never blocking: the socket is non-blocking and the message small.
    (void)::send(conn.fd.get(), socket.unit.drop_message.data(), socket.unit.drop_message.size(),
                 MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  socket.drop_log.drop(
      now,
      fmt::format("drop connection from [{}]:{} on [{}]:{} socket={} reason={} startups={}",
                  conn.peer.ip_text(), conn.peer.port(), conn.local.ip_text(), conn.local.port(),
                  socket.unit.name, policy::to_string(*decision.reason), startups_text()),
      socket.unit.name);
  if (runs_sshd(socket)) log_sshd_drop(conn, decision, peer, now);
}

void ConnectionPath::start(Socket& socket, activation::Accepted&& conn,
                           policy::InstanceId admission, Clock::time_point now) {
  const std::string peer_text = conn.peer.to_string();
  const bool ip_peer = conn.peer.is_inet();
  std::optional<policy::InstanceId> decision_instance = admission;
  ServicePlan& plan = *socket.service;
  ++socket.accept_counter;
  std::string name = instance_name(socket.unit.service, socket.accept_counter,
                                   activation::instance_part(conn.local, conn.peer, conn.fd.get()));
  activation::SpawnPlan spawn = plan.base;
  if (plan.instance_specifiers) {
    // The template names the instance (%i, %I, ...): instantiate it for this connection. Rare
    // in practice; the common templates (sshd -i, git daemon) skip this.
    std::string instance = name.substr(name.find('@') + 1);
    instance = instance.substr(0, instance.rfind('.'));
    std::vector<units::Diagnostic> diags;
    units::ServiceUnit unit = units::instantiate(plan.unit, instance, diags);
    auto specific = make_plan(unit, plan_context_, &plan);
    if (!specific) {
      spawn_failed(socket.unit.name, name, peer_text, decision_instance,
                   Error{EINVAL, specific.error().message}, now);
      return;
    }
    spawn = (*specific)->base;
  }
  UniqueFd capture_daemon_end, capture_child_end;
  if (plan.captures_output()) {
    auto pair = activation::make_record_pipe();
    if (!pair) {
      // Counted and logged like any failed spawn; EMFILE here pauses the listeners too.
      spawn_failed(socket.unit.name, name, peer_text, decision_instance, pair.error(), now);
      return;
    }
    capture_daemon_end = std::move(pair->first);
    capture_child_end = std::move(pair->second);
  }
  std::optional<std::pair<std::string, unsigned>> remote;
  if (ip_peer) remote.emplace(conn.peer.ip_text(), conn.peer.port());
  spawn =
      connection_spawn(plan, std::move(spawn), {conn.fd.get(), capture_child_end.get(), dev_null_},
                       std::move(remote), socket.unit.file_descriptor_name);
  auto instance = std::make_unique<Instance>();
  instance->name = std::move(name);
  instance->socket = socket.unit.name;
  instance->role = Instance::Role::connection;
  instance->owner = this;
  instance->peer = peer_text;
  if (ip_peer) instance->remote_ip = conn.peer.ip_text();
  instance->admission = decision_instance;
  instance->plan = socket.service;
  instance->started = now;
  if (ip_peer && plan.declares_readiness && admission_->config().stall.enabled())
    instance->connection.reset(::fcntl(conn.fd.get(), F_DUPFD_CLOEXEC, 3));
  prepare_runtime_directories(plan, instance->name);
  launch(socket, std::move(instance), std::move(spawn), std::move(capture_daemon_end), now);
  // usherd's copies of the connection and of the capture's child end close here: the child
  // has its own (its fd table was copied at the clone).
}

void ConnectionPath::park(Socket& socket, activation::Accepted&& conn, policy::TicketId ticket) {
  auto key = static_cast<std::uint64_t>(ticket);
  epoll_event event{};
  // Edge-triggered: the SSH banner a waiting client sends is one event (and stays in the
  // socket for sshd); its hang-up is the next.
  event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  event.data.u64 = key;
  if (parked_watch_ &&
      ::epoll_ctl(parked_watch_->native_handle(), EPOLL_CTL_ADD, conn.fd.get(), &event) != 0)
    spdlog::debug("park: watching for hang-up: {}", std::strerror(errno));
  spdlog::debug("park connection from [{}]:{} socket={} parked={}", conn.peer.ip_text(),
                conn.peer.port(), socket.unit.name, admission_->room_stats().parked);
  parked_.emplace(key, Parked{std::move(conn), socket.unit.name});
  arm_room_timer();
  host_.changed();
}

void ConnectionPath::watch_parked() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    // Hang-ups are then only found when a parked connection's turn comes.
    spdlog::error("waiting room: epoll_create1: {}", std::strerror(errno));
    return;
  }
  parked_watch_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  on_parked_events();
}

void ConnectionPath::on_parked_events() {
  parked_watch_->async_wait(
      asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec) return;
        epoll_event events[64];
        int n;
        while ((n = ::epoll_wait(parked_watch_->native_handle(), events, 64, 0)) > 0) {
          for (int i = 0; i < n; ++i) {
            auto it = parked_.find(events[i].data.u64);
            if (it == parked_.end()) continue;
            bool gone = (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            if (!gone) {
              char byte;
              ssize_t r = ::recv(it->second.conn.fd.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
              gone = r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
            }
            if (!gone) continue;  // the client's banner: it stays for sshd
            // Hung up while waiting: nothing was spawned for it, and nothing will be.
            admission_->cancel(policy::TicketId{it->first});
            parked_.erase(it);
            host_.changed();
          }
          if (n < 64) break;
        }
        on_parked_events();
      });
}

void ConnectionPath::queue_room() {
  if (room_queued_ || parked_.empty()) return;
  room_queued_ = true;
  asio::post(io_, [this] {
    room_queued_ = false;
    serve_room(Clock::now());
  });
}

void ConnectionPath::serve_room(Clock::time_point now) {
  if (parked_.empty()) return;
  for (const policy::RoomExit& exit : admission_->next_from_room(now)) leave_room(exit, now);
  finish_launches();
  arm_room_timer();
}

void ConnectionPath::leave_room(const policy::RoomExit& exit, Clock::time_point now) {
  auto it = parked_.find(static_cast<std::uint64_t>(exit.ticket));
  if (it == parked_.end()) {
    if (exit.instance) admission_->spawn_failed(*exit.instance);
    return;
  }
  Parked parked = std::move(it->second);
  parked_.erase(it);
  if (parked_watch_)
    (void)::epoll_ctl(parked_watch_->native_handle(), EPOLL_CTL_DEL, parked.conn.fd.get(), nullptr);
  Socket* socket = listeners_.find(parked.socket);
  if (exit.started()) {
    room_wait_seconds_.observe(std::chrono::duration<double>(exit.waited).count());
    if (socket == nullptr || !socket->service) {
      // Its socket was removed by a reload while it waited.
      admission_->spawn_failed(*exit.instance);
      return;
    }
    start(*socket, std::move(parked.conn), *exit.instance, now);
    return;
  }
  if (socket == nullptr) return;
  policy::Decision decision;
  decision.reason = exit.reason;
  decision.startups = exit.startups;
  drop(*socket, parked.conn, decision, exit.peer, now);
}

void ConnectionPath::arm_room_timer() {
  auto deadline = admission_->next_room_deadline();
  if (!deadline) {
    room_timer_.cancel();
    return;
  }
  room_timer_.expires_at(*deadline);
  room_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) serve_room(Clock::now());
  });
}

void ConnectionPath::launch(Socket& socket, std::unique_ptr<Instance> instance,
                            activation::SpawnPlan&& spawn, UniqueFd output,
                            Clock::time_point accepted_at) {
  // launch() returns once the child exists; it prepares and execs on another core while the
  // loop accepts the next connection. The instance is tracked at once (a service without
  // readiness ends its startup here, before the next admission); the state file and the
  // accept lines wait for the end of the batch.
  auto launched = launcher_.launch(std::move(spawn), socket.launch_group, accepted_at);
  Clock::time_point spawned_at = Clock::now();
  if (!launched) {
    spawn_failed(socket.unit.name, instance->name, instance->peer, instance->admission,
                 launched.error(), spawned_at, true);
    return;
  }
  spawn_seconds_.observe(seconds_between(accepted_at, spawned_at));
  instance->pid = launched->pid;
  instance->pidfd = std::move(launched->pidfd);
  identify(*instance);
  instance->started_wall = std::chrono::system_clock::now();
  if (output)
    instance->output = std::make_unique<asio::posix::stream_descriptor>(io_, output.release());
  Instance& ref = instances_.track(std::move(instance));
  if (ref.output) readiness_.watch_output(ref);
  if (!ref.plan->declares_readiness) {
    // No readiness signal declared: the startup ends when the process is started (its exec
    // is not waited for; one that fails is a failed spawn when the process ends). usherd
    // --check warned that MaxStartups cannot see this service.
    readiness_.mark_ready(ref, "exec", spawned_at);
  } else if (auto timeout = startup_timeout(socket); timeout.count() > 0) {
    readiness_.arm_startup_timeout(ref, timeout);
  }
  // After mark_ready: an instance ready at exec is recorded ready in its one line.
  instances_.persist(ref, StateFile::Event::spawned);
  launched_.push_back(ref.key);
}

void ConnectionPath::finish_launches() {
  if (launched_.empty()) return;
  std::vector<std::uint64_t> started;
  started.swap(launched_);
  // The '+' lines are on disk before the accept lines are logged: an instance anyone saw
  // accepted is re-adopted after a crash.
  instances_.flush_state();
  if (spdlog::should_log(spdlog::level::info)) {
    for (std::uint64_t key : started) {
      const Instance* instance = instances_.find(key);
      if (instance == nullptr) continue;
      log_structured(
          spdlog::level::info,
          fmt::format("accept socket={} peer={} instance={} pid={} startups={}", instance->socket,
                      instance->peer, instance->name, instance->pid, startups_text()),
          instance->name, instance->socket, instance->remote_ip);
    }
  }
  host_.changed();
}

void ConnectionPath::spawn_failed(const std::string& socket, const std::string& name,
                                  const std::string& peer,
                                  std::optional<policy::InstanceId> admission, const Error& error,
                                  Clock::time_point now, bool launch_failed) {
  ++spawn_failures_;
  if (admission) {
    admission_->spawn_failed(*admission);
    queue_room();
  }
  std::string message = fmt::format("spawn instance={} socket={} peer={} failed: {}", name, socket,
                                    peer, error.to_string());
  Socket* state = listeners_.find(socket);
  if (state == nullptr) {
    spdlog::error("{}", message);
    return;
  }
  state->drop_log.drop(now, message, socket);
  // Out of fds (or memory) in the spawn, or no process to be had (a launch's EAGAIN: the
  // kernel's process limits, or too many children still starting; a child's own EAGAIN is
  // its user's LimitNPROC=): the next accept would only fail the same way.
  if (is_fd_exhaustion(error.code) || (launch_failed && error.code == EAGAIN))
    listeners_.pause_all(*state, error.code);
}

void ConnectionPath::reclaim_stalled(Clock::time_point now) {
  const policy::StallConfig& stall = admission_->config().stall;
  if (parked_.empty() || !stall.enabled()) return;
  std::vector<policy::StartupProgress> startups;
  for (const auto& [key, inst] : instances_.all()) {
    if (inst->owner != this || inst->state != Instance::State::starting || !inst->admission ||
        !inst->connection || inst->timed_out || inst->client_gone)
      continue;
    auto info = admission_->instance(*inst->admission);
    if (!info || info->ready) continue;
    startups.push_back({key, info->admitted_at, info->exempt,
                        activation::tcp_bytes_received(inst->connection.get()),
                        activation::peer_hung_up(inst->connection.get())});
  }
  std::size_t needed = std::min(parked_.size(), kMaxReclaimsPerPass);
  for (std::uint64_t key : policy::choose_stalled(startups, now, stall, needed)) {
    // What the choice was made on: the connection is not looked at again.
    const policy::StartupProgress& probe = *std::find_if(
        startups.begin(), startups.end(), [key](const auto& s) { return s.key == key; });
    Instance& inst = *instances_.find(key);
    ++startups_reclaimed_;
    if (probe.client_gone) {
      // Penalised as sshd's listener penalises a child whose client left unauthenticated.
      inst.client_gone = true;
      spdlog::info(
          "reclaim instance={} socket={} peer={} its client hung up after {:.1f}s, before it "
          "was ready; the startup slot goes to a waiting connection",
          inst.name, inst.socket, inst.peer, seconds_between(inst.started, now));
    } else {
      // Penalised as sshd penalises a login that outstays LoginGraceTime (grace-exceeded).
      inst.timed_out = true;
      spdlog::warn(
          "reclaim instance={} socket={} peer={} stalled: its client sent {} bytes in {:.1f}s; "
          "the startup slot goes to a waiting connection",
          inst.name, inst.socket, inst.peer, probe.bytes_received.value_or(0),
          seconds_between(inst.started, now));
    }
    inst.connection.reset();
    instances_.stop_as_unit_says(inst);
  }
}

void ConnectionPath::housekeeping(Clock::time_point now) {
  reclaim_stalled(now);
  for (const auto& stalled : launcher_.launched_before(now - kExecDeadline)) {
    Instance* instance = instances_.find_by_pid(stalled.pid);
    if (instance == nullptr || instance->exec_overdue) continue;
    instance->exec_overdue = true;
    (void)activation::send_signal(instance->pidfd.get(), SIGKILL);
    // A failed spawn (its startup slot freed now, its source not penalised), logged once.
    spawn_failed(
        instance->socket, instance->name, instance->peer, instance->admission,
        Error{ETIMEDOUT, fmt::format("no execve {:.1f}s after its launch (stopped, or stuck on "
                                     "WorkingDirectory= or the binary's file system); killed",
                                     seconds_between(stalled.launched, now))},
        now);
    instance->admission.reset();
  }
}

void ConnectionPath::log_sshd_drop(const activation::Accepted& conn,
                                   const policy::Decision& decision, const policy::IpAddress& peer,
                                   Clock::time_point now) {
  if (!conn.peer.is_inet() || !decision.reason) return;
  bool penalty = *decision.reason == policy::DropReason::penalty;
  if (!penalty && !policy::sshd_drop_reason(*decision.reason)) return;  // sshd never drops so
  ++sshd_drops_;
  policy::SshdLogRateLimit& limit = penalty ? sshd_penalty_log_ : sshd_startups_log_;
  policy::SshdLogRateLimit::Verdict verdict = limit.event(whole_seconds(now));
  if (verdict.dropped > 0)
    spdlog::info("{}", policy::format_sshd_drops_suppressed(
                           penalty ? "PerSourcePenalties" : "Maxstartups", verdict.dropped));
  if (verdict.suppress) return;
  std::optional<policy::PenaltyKind> kind;
  bool table_full = false;
  if (penalty) {
    // Which penalty the block serves: looked up only for a line that is written.
    table_full = true;
    for (const auto& source : admission_->penalised_sources(now)) {
      if (source.block.contains(peer)) {
        kind = source.reason;
        table_full = false;
        break;
      }
    }
  }
  auto reason = policy::sshd_drop_reason(*decision.reason, kind, table_full);
  if (!reason) return;
  auto endpoint = [](const activation::SocketAddress& a) {
    auto ip = policy::IpAddress::parse(a.ip_text());
    return policy::Endpoint{ip ? *ip : policy::IpAddress(), static_cast<std::uint16_t>(a.port())};
  };
  log_structured(spdlog::level::info,
                 policy::format_sshd_drop(decision.startups, endpoint(conn.peer),
                                          endpoint(conn.local), *reason),
                 "", "", conn.peer.ip_text());
}

void ConnectionPath::log_sshd_penalty(const Instance& instance, const policy::Released& released) {
  policy::SshdPenaltyEvent event;
  switch (released.record) {
    case policy::PenaltyRecord::active:
      event = policy::SshdPenaltyEvent::new_active;
      break;
    case policy::PenaltyRecord::pending:
      event = policy::SshdPenaltyEvent::new_deferred;
      break;
    case policy::PenaltyRecord::table_full:
      event = policy::SshdPenaltyEvent::table_full;
      break;
    default:
      return;  // nothing recorded: sshd says nothing either
  }
  auto peer = policy::IpAddress::parse(instance.remote_ip);
  if (!peer) return;
  const policy::GlobalConfig& config = admission_->config();
  unsigned prefix = peer->is_v4() ? config.net_block_size.v4 : config.net_block_size.v6;
  log_structured(spdlog::level::info,
                 policy::format_sshd_penalty(event, *peer, prefix,
                                             config.penalties.duration_for(*released.penalty),
                                             *released.penalty),
                 instance.name, instance.socket, instance.remote_ip);
}

void ConnectionPath::instance_ready(Instance& instance, const char* via, Clock::time_point now) {
  instance.connection.reset();
  if (instance.admission) admission_->mark_ready(*instance.admission, now);
  // "unknown": an adopted instance whose readiness cannot be seen; no duration to count.
  if (std::string_view(via) != "unknown")
    startup_seconds_[instance.socket].observe(seconds_between(instance.started, now));
  host_.changed();
  queue_room();
}

void ConnectionPath::instance_ended(Instance& instance, const EndStatus& status,
                                    Clock::time_point now) {
  instance.connection.reset();
  bool never_ran = false;
  if (status) {
    if (auto failure = launcher_.take_failure(instance.pid)) {
      // It never reached its execve (launched without waiting for it): a failed spawn, as
      // if the clone itself had failed. Not an instance that ended before ready: its source
      // is not penalised.
      spawn_failed(instance.socket, instance.name, instance.peer, instance.admission, *failure,
                   now);
      instance.admission.reset();
      never_ran = true;
    }
  }
  if (instance.admission) {
    // Which penalty an end before readiness earns: OpenSSH 10's table for sshd (its exit
    // statuses say why), usherd's legacy one for other services (X-ExitStatusOutcomes=).
    policy::ExitStatusOutcomes table = instance.plan
                                           ? instance.plan->unit.effective_exit_status_outcomes()
                                           : policy::ExitStatusOutcomes::legacy;
    policy::Released released = admission_->release(
        *instance.admission, end_of(instance.timed_out, status, instance.client_gone), table, now);
    if (released.penalty && table == policy::ExitStatusOutcomes::openssh)
      log_sshd_penalty(instance, released);
  }
  if (!never_ran) log_end(instance, status, now);
  queue_room();
}

void ConnectionPath::adopt(Instance& instance, Socket& socket, Clock::time_point now) {
  instance.owner = this;
  instance.role = Instance::Role::connection;
  instance.plan = socket.service;
  auto peer = policy::IpAddress::parse(instance.remote_ip);
  instance.admission = admission_->adopt(socket.policy_id, peer ? *peer : policy::IpAddress(),
                                         instance.state != Instance::State::starting, now);
  if (instance.state == Instance::State::starting)
    readiness_.resume_startup(instance,
                              socket.unit.startup_timeout.value_or(default_startup_timeout_), now);
}

void ConnectionPath::shutdown() {
  // Parked connections never got an instance: closed, as a stopping sshd closes its queue.
  for (const auto& [ticket, parked] : parked_) admission_->cancel(policy::TicketId{ticket});
  parked_.clear();
  room_timer_.cancel();
  std::vector<std::uint64_t> starting;
  for (const auto& [key, inst] : instances_.all())
    if (inst->role == Instance::Role::connection &&
        (inst->state == Instance::State::starting || inst->stopping_by_itself))
      starting.push_back(key);
  for (auto key : starting) {
    Instance& inst = *instances_.find(key);
    int signal = inst.plan ? inst.plan->unit.kill_signal : SIGTERM;
    instances_.stop(inst, signal, std::chrono::seconds(5));
  }
}

}  // namespace usherd::supervisor

// The daemon's wiring: start, load and reload the configuration, signals, housekeeping,
// adoption of what a previous usherd left running, and the order of shutdown.
#include "supervisor/daemon.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "activation/process.h"
#include "activation/runtime_dir.h"
#include "supervisor/convert.h"
#include "supervisor/service_runner.h"
#include "units/loader.h"

namespace usherd::supervisor {

Daemon::Daemon(Options options)
    : options_(std::move(options)),
      // One thread runs the loop and nothing else touches it: no locking in Asio's scheduler
      // or reactor (its mutexes were 3 % of usherd's CPU per connection).
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE),
      dev_null_(::open("/dev/null", O_RDWR | O_CLOEXEC)),
      host_(io_, [this] { return title(); }),
      instances_(io_, options_.runtime_dir + "/state"),
      readiness_(io_, instances_),
      listeners_(io_),
      connections_(io_, instances_, readiness_, listeners_, host_, plan_context(), dev_null_.get()),
      control_(io_, ControlServer::Handler{
                        [this](Clock::time_point now) { return snapshot(now); },
                        [this] { return reload(); },
                        [this](const std::string& name) { return stop_instance(name); }}),
      housekeeping_timer_(io_) {
  instances_.set_hooks({[this](Instance& inst) { readiness_.drain(inst); },
                        [this](Instance& inst) { readiness_.drain_output(inst); },
                        [this] { after_end(); }});
  listeners_.set_handlers([this](Listener& listener) { on_readable(listener); },
                          [this](const Socket& socket, Clock::time_point now) {
                            return connections_.must_hold(socket, now);
                          });
}

Daemon::~Daemon() {
  // Runners disown their instances as they go: before the table does.
  listeners_.sockets().clear();
}

PlanContext Daemon::plan_context() const {
  return PlanContext{options_.runtime_dir + "/notify", {}};
}

bool Daemon::load(bool initial, std::string& report,
                  std::optional<units::ListenAddress>* metrics_listen) {
  units::Configuration config = units::load_configuration(options_.unit_dirs, options_.config_file);
  std::set<std::string> failed_files;
  for (const auto& d : config.diagnostics) {
    switch (d.severity) {
      case units::Diagnostic::Severity::error:
        spdlog::error("config {}", d.to_string());
        failed_files.insert(d.file);
        break;
      case units::Diagnostic::Severity::warning:
        spdlog::warn("config {}", d.to_string());
        break;
      case units::Diagnostic::Severity::notice:
        spdlog::info("config {}", d.to_string());
        break;
    }
  }
  if (!config.daemon_config_ok) {
    report = initial ? "usherd.conf is invalid; not starting"
                     : "usherd.conf is invalid; the previous configuration stays in force";
    return false;
  }
  connections_.configure(config.daemon);
  if (metrics_listen) *metrics_listen = config.daemon.metrics_listen;
  policy::AdmissionEngine& admission = connections_.admission();
  std::vector<std::unique_ptr<Socket>>& sockets = listeners_.sockets();

  // Build the new socket set. A unit that failed to load keeps its previous version.
  std::vector<std::unique_ptr<Socket>> next;
  std::set<std::string> kept_names;
  std::vector<std::string> changes;
  for (auto& unit : config.sockets) {
    auto service_it = config.services.find(unit.service);
    std::string error;
    std::shared_ptr<ServicePlan> plan;
    if (service_it == config.services.end()) {
      error = "service " + unit.service + " not found";
    } else if (auto made = make_plan(service_it->second, plan_context())) {
      plan = std::move(*made);
    } else {
      error = made.error().message;
    }
    if (!plan) {
      spdlog::error("load socket={} service={}: {}", unit.name, unit.service, error);
      failed_files.insert(unit.path);
      if (listeners_.find(unit.name) != nullptr) {
        kept_names.insert(unit.name);
        spdlog::warn("load socket={} keeps its previous configuration", unit.name);
      }
      continue;
    }
    auto state = std::make_unique<Socket>();
    state->unit = std::move(unit);
    state->service = std::move(plan);
    next.push_back(std::move(state));
  }
  // Old sockets whose unit file now fails to parse at all (it vanished from config.sockets
  // but an error names its file) keep running as they were.
  for (auto& old : sockets) {
    bool present = false;
    for (auto& n : next) present |= n->unit.name == old->unit.name;
    if (!present && (kept_names.count(old->unit.name) || failed_files.count(old->unit.path))) {
      kept_names.insert(old->unit.name);
    }
  }

  // Listeners whose address and options did not change keep their fd.
  ListenerSet::Reuse reuse;
  std::vector<std::unique_ptr<Socket>> previous = std::move(sockets);
  sockets.clear();
  for (auto& old : previous) {
    if (kept_names.count(old->unit.name)) {
      sockets.push_back(std::move(old));
      continue;
    }
    for (auto& l : old->listeners) {
      if (l->fd) l->fd->cancel();
      reuse.emplace(l->key, std::move(l));
    }
  }
  for (auto& state : next) {
    Socket* old = nullptr;
    for (auto& p : previous)
      if (p && p->unit.name == state->unit.name) old = p.get();
    if (old) {
      state->policy_id = old->policy_id;
      admission.update_socket(state->policy_id, to_socket_policy(state->unit));
      state->accept_counter = old->accept_counter;
      // The whole run carries over: main process, restart back-off and its timer,
      // ExecReload=/ExecStop= in progress.
      if (!state->unit.accept && old->runner) {
        state->runner = std::move(old->runner);
        state->runner->rebind(*state);
      }
    } else {
      state->policy_id = admission.add_socket(to_socket_policy(state->unit));
      if (!initial) changes.push_back("added " + state->unit.name);
    }
    state->launch_group = std::hash<std::string>{}(state->unit.name);
    listeners_.open(*state, reuse);
    // Accept=no, or a datagram socket: one service takes the listening sockets.
    bool whole = !state->unit.accept;
    for (const auto& l : state->listeners) whole = whole || l->type != SOCK_STREAM;
    if (whole && !state->runner)
      state->runner = std::make_shared<ServiceRunner>(io_, *state, instances_, readiness_,
                                                      listeners_, dev_null_.get());
    sockets.push_back(std::move(state));
  }
  for (auto& p : previous) {
    if (!p) continue;
    bool still = listeners_.find(p->unit.name) != nullptr;
    if (!still) {
      admission.remove_socket(p->policy_id);
      changes.push_back("removed " + p->unit.name);
    }
  }
  for (auto& [key, l] : reuse) {
    if (l->fd) spdlog::info("close address={} (no longer configured)", l->bound);
  }
  reuse.clear();
  for (auto& s : sockets) {
    // An Accept=no service that is running keeps its main process; the listeners are armed
    // again only when it is idle (the service owns the sockets while it runs).
    if (s->runner && !s->runner->idle()) {
      if (!initial) s->runner->reload();
      continue;
    }
    listeners_.arm_all(*s);
  }
  report = fmt::format("{} sockets loaded, {} failed{}{}", sockets.size(), failed_files.size(),
                       changes.empty() ? "" : "; ", fmt::join(changes, ", "));
  return true;
}

std::pair<bool, std::string> Daemon::reload() {
  host_.reloading();
  std::string report;
  bool ok = load(false, report);
  host_.count_reload();
  spdlog::info("reload {}: {}", ok ? "done" : "refused", report);
  host_.ready();
  host_.changed();
  return {ok, report};
}

void Daemon::on_readable(Listener& listener) {
  Socket& socket = *listener.owner;
  if (socket.runner) {
    // Accept=no (or a datagram socket): the service takes the listening sockets.
    socket.runner->activate();
    return;
  }
  connections_.drain(listener);
}

void Daemon::after_end() {
  // Its pidfd and capture are closed now: a listener paused for want of fds tries again.
  listeners_.resume_exhausted();
  host_.changed();
  if (host_.stopping()) maybe_finish_shutdown();
}

bool Daemon::stop_instance(const std::string& name) {
  Instance* instance = instances_.find_by_name(name);
  if (instance == nullptr) return false;
  instances_.stop_as_unit_says(*instance);
  return true;
}

std::string Daemon::title() const {
  const auto& admission = connections_.admission();
  unsigned parked = admission.room_stats().parked;
  return fmt::format("{} of {} startups, {}{} instances", admission.startups().current,
                     admission.config().max_startups.to_string(),
                     parked > 0 ? fmt::format("{} parked, ", parked) : std::string(),
                     instances_.size());
}

StatusSnapshot Daemon::snapshot(Clock::time_point now) const {
  const policy::AdmissionEngine& admission = connections_.admission();
  StatusSnapshot out;
  out.startups = admission.startups();
  out.limits = admission.config().max_startups;
  out.penalised_sources = admission.penalised_sources(now).size();
  out.uptime_s = std::chrono::duration<double>(now - host_.started_at()).count();
  out.pid = ::getpid();
  out.reloads = host_.reloads();
  out.notify_rejected = readiness_.notify_rejected();
  out.startups_unknown = readiness_.startups_unknown();
  out.startups_reclaimed = connections_.startups_reclaimed();
  out.startup_timeouts = readiness_.startup_timeouts();
  out.spawn_failures = connections_.spawn_failures();
  out.launches_stalled = connections_.stalled_launches();
  out.spawn_seconds = connections_.spawn_seconds();
  out.room = admission.room_stats();
  out.parked_blocks = admission.parked_blocks();
  out.room_wait_seconds = connections_.room_wait_seconds();
  for (const auto& s : listeners_.sockets()) {
    SocketSnapshot so;
    so.name = s->unit.name;
    so.service = s->unit.service;
    for (const auto& l : s->listeners) so.listen.push_back(l->bound);
    so.held = s->held();
    so.accept = s->unit.accept;
    so.stats = admission.socket_stats(s->policy_id).value_or(policy::SocketStats{});
    if (s->runner) {
      out.spawn_failures += s->runner->spawn_failures();
      if (!s->unit.accept) so.service_state = s->runner->phase_name();
    }
    if (const Histogram* h = connections_.startup_seconds(s->unit.name)) so.startup_seconds = *h;
    out.sockets.push_back(std::move(so));
  }
  static constexpr const char* kStates[] = {"starting", "running", "stopping"};
  for (const auto& [key, inst] : instances_.all()) {
    if (inst->role == Instance::Role::service_helper) continue;
    InstanceSnapshot o;
    o.id = inst->name;
    o.socket = inst->socket;
    o.service = inst->plan ? inst->plan->unit.name : std::string();
    o.pid = inst->pid;
    o.peer = inst->peer;
    o.state = kStates[static_cast<int>(inst->state)];
    if (inst->ready_via) o.ready_via = inst->ready_via;
    o.age_s = std::chrono::duration<double>(now - inst->started).count();
    o.adopted = inst->adopted;
    out.instances.push_back(std::move(o));
  }
  out.tracked = instances_.size();
  return out;
}

void Daemon::adopt() {
  Clock::time_point now = Clock::now();
  for (Instance* instance : instances_.adopt_from_state_file()) {
    Socket* socket = listeners_.find(instance->socket);
    if (socket == nullptr) continue;  // its socket is gone: watched until it ends
    if (socket->runner) {
      socket->runner->adopt(
          *instance, socket->unit.startup_timeout.value_or(connections_.default_startup_timeout()),
          now);
    } else {
      connections_.adopt(*instance, *socket, now);
    }
  }
}

void Daemon::start_signals() {
  // No SIGCHLD: instances end through their pidfds, orphans are reaped by housekeeping. The
  // others are blocked and read from a signalfd rather than caught: with no handler of
  // usherd's installed, a child has nothing to reset between clone and execve but SIGPIPE's
  // SIG_IGN (one system call on every spawn instead of eight). usherd runs one thread, so
  // the mask set here is everywhere; every child starts with an empty one.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    spdlog::critical("signalfd: {}", std::strerror(errno));
    std::exit(1);
  }
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal_fd_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  activation::note_signal_dispositions();
  arm_signals();
}

void Daemon::arm_signals() {
  signal_fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& ec) {
                           if (ec) return;
                           signalfd_siginfo info{};
                           while (::read(signal_fd_->native_handle(), &info, sizeof info) ==
                                  static_cast<ssize_t>(sizeof info)) {
                             on_signal(static_cast<int>(info.ssi_signo));
                           }
                           arm_signals();
                         });
}

void Daemon::on_signal(int signo) {
  switch (signo) {
    case SIGTERM:
    case SIGINT:
      spdlog::info("stop signal={}", strsignal(signo));
      begin_shutdown();
      break;
    case SIGHUP:
      reload();
      break;
    case SIGUSR1:
      spdlog::info("dump\n{}", render_status_text(control_.snapshot(Clock::now())));
      break;
    default:
      break;
  }
}

void Daemon::begin_shutdown() {
  if (host_.stopping()) return;
  host_.stop();
  listeners_.close_all();
  for (auto& s : listeners_.sockets())
    if (s->runner) s->runner->shutdown();
  // Instances still starting are unauthenticated: stopped. Running per-connection instances
  // (an ssh session) are left alone and stay recorded for the next start.
  connections_.shutdown();
  maybe_finish_shutdown();
}

void Daemon::maybe_finish_shutdown() {
  for (const auto& [key, inst] : instances_.all()) {
    if (inst->role != Instance::Role::connection) return;
    if (inst->state != Instance::State::running) return;
  }
  spdlog::info("exit running_instances={} (left running)", instances_.size());
  instances_.close_state();
  io_.stop();
}

void Daemon::housekeeping() {
  Clock::time_point now = Clock::now();
  for (auto& s : listeners_.sockets()) s->drop_log.flush(now, s->unit.name);
  readiness_.flush_logs(now);
  instances_.housekeeping();
  connections_.housekeeping(now);
  instances_.flush_state();  // the '-' lines of the last second, if no spawn took them along
  host_.tick();
  housekeeping_timer_.expires_after(std::chrono::seconds(1));
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) housekeeping();
  });
}

int Daemon::run() {
  if (auto r = activation::raise_nofile_to_hard(); !r)
    spdlog::warn("rlimit: {}", r.error().to_string());
  if (auto r = activation::become_child_subreaper(); !r)
    spdlog::warn("subreaper: {}", r.error().to_string());
  // Everything usherd finds in its runtime directory is trusted (the state file names
  // processes to adopt and signal): one that is not usherd's alone stops it here.
  if (auto dir = activation::open_private_directory(options_.runtime_dir); !dir) {
    spdlog::critical("runtime directory: {}; not starting", dir.error().to_string());
    return 1;
  }
  host_.detect_service_manager();
  if (auto started = instances_.start(); !started) {
    spdlog::critical("exit watch: {}", started.error().to_string());
    return 1;
  }
  int inherited = collect_inherited_listeners();
  if (inherited > 0) spdlog::info("adopt listeners={} passed by the service manager", inherited);

  std::string report;
  std::optional<units::ListenAddress> metrics_listen;
  if (!load(true, report, &metrics_listen)) {
    spdlog::critical("{}", report);
    return 1;
  }
  adopt();
  readiness_.start(options_.runtime_dir + "/notify");
  control_.start(options_.runtime_dir + "/control");
  control_.start_metrics(metrics_listen);
  start_signals();
  housekeeping();
  // "start" is the event tests and operators wait for: listeners, the notify socket and the
  // control socket are all in place by now.
  spdlog::info("start {}", report);
  host_.ready();
  io_.run();
  return 0;
}

}  // namespace usherd::supervisor

// The daemon's lifecycle: start, load and reload the configuration, signals, shutdown,
// re-adoption of instances left by a previous run, the process title and sd_notify.
#include "supervisor/daemon.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "activation/process.h"
#include "activation/runtime_dir.h"
#include "supervisor/convert.h"
#include "supervisor/logging.h"
#include "supervisor/proc_title.h"

namespace usherd::supervisor {

Daemon::Daemon(Options options)
    : options_(std::move(options)),
      // One thread runs the loop and nothing else touches it: no locking in Asio's scheduler
      // or reactor (its mutexes were 3 % of usherd's CPU per connection).
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE),
      housekeeping_timer_(io_),
      rng_(std::random_device{}()) {}

Daemon::~Daemon() {
  // The exit watch's fd belongs to exit_watch_, not to its descriptor in the loop.
  if (exit_watch_io_) (void)exit_watch_io_->release();
}

SocketState* Daemon::find_socket(const std::string& name) {
  for (auto& s : sockets_)
    if (s->unit.name == name) return s.get();
  return nullptr;
}

PlanContext Daemon::plan_context() const {
  return PlanContext{options_.runtime_dir + "/notify", {}};
}

void Daemon::apply_daemon_config(const units::DaemonConfig& config) {
  daemon_config_ = config;
  if (!admission_)
    admission_ = std::make_unique<policy::AdmissionEngine>(to_admission_config(config));
  else
    admission_->reconfigure(to_admission_config(config));
  max_startups_text_ = admission_->config().max_startups.to_string();
}

bool Daemon::load(bool initial, std::string& report) {
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
  apply_daemon_config(config.daemon);

  // Build the new socket set. A unit that failed to load keeps its previous version.
  std::vector<std::unique_ptr<SocketState>> next;
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
      if (find_socket(unit.name) != nullptr) {
        kept_names.insert(unit.name);
        spdlog::warn("load socket={} keeps its previous configuration", unit.name);
      }
      continue;
    }
    auto state = std::make_unique<SocketState>();
    state->unit = std::move(unit);
    state->service = std::move(plan);
    next.push_back(std::move(state));
  }
  // Old sockets whose unit file now fails to parse at all (it vanished from config.sockets
  // but an error names its file) keep running as they were.
  for (auto& old : sockets_) {
    bool present = false;
    for (auto& n : next) present |= n->unit.name == old->unit.name;
    if (!present && (kept_names.count(old->unit.name) || failed_files.count(old->unit.path))) {
      kept_names.insert(old->unit.name);
    }
  }

  // Listeners whose address and options did not change keep their fd.
  std::map<std::string, std::unique_ptr<ListenerState>> reuse;
  std::vector<std::unique_ptr<SocketState>> previous = std::move(sockets_);
  sockets_.clear();
  for (auto& old : previous) {
    if (kept_names.count(old->unit.name)) {
      sockets_.push_back(std::move(old));
      continue;
    }
    for (auto& l : old->listeners) {
      if (l->fd) l->fd->cancel();
      reuse.emplace(l->key, std::move(l));
    }
  }
  for (auto& state : next) {
    SocketState* old = nullptr;
    for (auto& p : previous)
      if (p && p->unit.name == state->unit.name) old = p.get();
    if (old) {
      state->policy_id = old->policy_id;
      admission_->update_socket(state->policy_id, to_socket_policy(state->unit));
      state->accept_counter = old->accept_counter;
      // The whole run state carries over: main process, restart back-off and its timer,
      // ExecReload=/ExecStop= in progress (timer callbacks find the socket by name).
      state->run = std::move(old->run);
    } else {
      state->policy_id = admission_->add_socket(to_socket_policy(state->unit));
      if (!initial) changes.push_back("added " + state->unit.name);
    }
    state->launch_group = std::hash<std::string>{}(state->unit.name);
    open_listeners(*state, reuse);
    sockets_.push_back(std::move(state));
  }
  for (auto& p : previous) {
    if (!p) continue;
    bool still = find_socket(p->unit.name) != nullptr;
    if (!still) {
      admission_->remove_socket(p->policy_id);
      changes.push_back("removed " + p->unit.name);
    }
  }
  for (auto& [key, l] : reuse) {
    if (l->fd) spdlog::info("close address={} (no longer configured)", l->bound);
  }
  reuse.clear();
  for (auto& s : sockets_) {
    // An Accept=no service that is running keeps its main process; the listeners are armed
    // again only when it is idle (the service owns the sockets while it runs).
    if (!s->unit.accept && s->run.phase != ServiceRun::Phase::idle) {
      if (!initial) reload_service(*s);
      continue;
    }
    for (auto& l : s->listeners) arm_listener(*l);
  }
  report = fmt::format("{} sockets loaded, {} failed{}{}", sockets_.size(), failed_files.size(),
                       changes.empty() ? "" : "; ", fmt::join(changes, ", "));
  return true;
}

std::pair<bool, std::string> Daemon::reload() {
  if (under_systemd_) sd_notify(0, "RELOADING=1");
  std::string report;
  bool ok = load(false, report);
  ++reloads_;
  spdlog::info("reload {}: {}", ok ? "done" : "refused", report);
  if (under_systemd_) sd_notify(0, "READY=1");
  update_title();
  return {ok, report};
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
      spdlog::info("dump\n{}", render_status_text(snapshot(Clock::now())));
      break;
    default:
      break;
  }
}

void Daemon::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  if (under_systemd_) sd_notify(0, "STOPPING=1");
  launcher_.discard_spare();
  for (auto& s : sockets_) {
    for (auto& l : s->listeners) {
      if (l->pause_timer) l->pause_timer->cancel();
      l->fd.reset();  // closes: no new connections
    }
    if (!s->unit.accept) stop_service(*s);
  }
  // Instances still starting are unauthenticated: stop them, and those that said STOPPING=1
  // (nothing else ends their wait). Running per-connection instances (an ssh session) are
  // left alone and stay recorded for the next start.
  std::vector<std::uint64_t> starting;
  for (auto& [key, inst] : instances_)
    if (inst->role == Instance::Role::connection &&
        (inst->state == Instance::State::starting || inst->stopping_by_itself))
      starting.push_back(key);
  for (auto key : starting) {
    Instance& inst = *instances_.at(key);
    int signal = inst.plan ? inst.plan->unit.kill_signal : SIGTERM;
    stop(inst, signal, std::chrono::seconds(5));
  }
  maybe_finish_shutdown();
}

void Daemon::maybe_finish_shutdown() {
  if (!stopping_) return;
  for (auto& [key, inst] : instances_) {
    if (inst->role != Instance::Role::connection) return;
    if (inst->state != Instance::State::running) return;
  }
  spdlog::info("exit running_instances={} (left running)", instances_.size());
  state_file_.flush();
  if (instances_.empty()) state_file_.remove();
  io_.stop();
}

void Daemon::housekeeping() {
  Clock::time_point now = Clock::now();
  for (auto& s : sockets_) {
    s->drop_log.flush(now, s->unit.name);
    s->output_log.flush(now, s->unit.name);
  }
  reap_orphans();
  enforce_exec_deadline(now);
  poll_unwatched_exits();
  refill_spare();
  state_file_.flush();  // the '-' lines of the last second, if no spawn took them along
  update_title();
  if (under_systemd_) {
    sd_notify_status();
    if (watchdog_) sd_notify(0, "WATCHDOG=1");
  }
  housekeeping_timer_.expires_after(std::chrono::seconds(1));
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) housekeeping();
  });
}

std::string Daemon::title() const {
  return fmt::format("{} of {} startups, {} instances", admission_->startups().current,
                     max_startups_text_, instances_.size());
}

void Daemon::update_title() {
  // Called at every start and end; formatted and written at most every kTitleInterval (a
  // reader of ps needs no fresher figures), the last change always shown within it.
  if (title_timer_armed_) return;
  Clock::time_point now = Clock::now();
  if (now - title_written_at_ < kTitleInterval) {
    if (!title_timer_) title_timer_ = std::make_unique<asio::steady_timer>(io_);
    title_timer_armed_ = true;
    title_timer_->expires_at(title_written_at_ + kTitleInterval);
    title_timer_->async_wait([this](const boost::system::error_code& ec) {
      title_timer_armed_ = false;
      if (!ec) update_title();
    });
    return;
  }
  title_written_at_ = now;
  std::string text = "usherd: " + title();
  if (text == last_title_) return;
  last_title_ = text;
  ProcTitle::set(text);
}

void Daemon::sd_notify_status() {
  std::string status = "STATUS=" + title();
  if (status == last_status_) return;
  last_status_ = status;
  sd_notify(0, status.c_str());
}

void Daemon::adopt_from_state_file() {
  std::string path = options_.runtime_dir + "/state";
  std::string boot = activation::boot_id().value_or("");
  state_file_.set_boot_id(boot);
  auto read = StateFile::read(path, boot);
  if (!read) spdlog::warn("adopt nothing: {}", read.error().to_string());
  std::vector<StateEntry> entries = read ? std::move(*read) : std::vector<StateEntry>();
  std::vector<StateEntry> live;
  unsigned ended = 0;
  Clock::time_point now = Clock::now();
  auto wall_now = std::chrono::system_clock::now();
  timespec boot_now{};
  clock_gettime(CLOCK_BOOTTIME, &boot_now);
  std::int64_t boot_now_ms =
      static_cast<std::int64_t>(boot_now.tv_sec) * 1000 + boot_now.tv_nsec / 1'000'000;
  for (auto& e : entries) {
    // Adopted means signalled later (a startup timeout, a stop): only a process whose
    // identity is proven is taken. The pidfd's inode names one process for the life of the
    // system where pidfds live on pidfs; elsewhere the start time must match, and in every
    // case the process must lead its own session, as each process usherd starts does.
    auto pidfd = activation::open_pidfd(e.pid);
    bool same = false;
    if (pidfd && e.pidfd_inode) {
      same = activation::pidfd_inode(pidfd->get()).value_or(0) == e.pidfd_inode;
    } else if (pidfd && e.start_time) {
      auto start = activation::process_start_time(e.pid);
      same = start && *start == e.start_time;
    }
    if (same) same = activation::process_session(e.pid).value_or(0) == e.pid;
    auto zombie = activation::has_ended(e.pid);
    if (!same || !zombie || *zombie) {
      // gone, the pid now belongs to another process, or it has ended and its new parent
      // has not reaped it yet
      ++ended;
      continue;
    }
    auto inst = std::make_unique<Instance>();
    inst->key = next_instance_key_++;
    inst->name = e.name;
    inst->socket = e.socket;
    inst->pid = e.pid;
    inst->pidfd_inode = e.pidfd_inode;
    inst->start_time = e.start_time;
    inst->pidfd = std::move(*pidfd);
    inst->peer = e.peer;
    inst->remote_ip = e.peer.substr(0, e.peer.rfind(':'));
    if (!inst->remote_ip.empty() && inst->remote_ip.front() == '[')
      inst->remote_ip = inst->remote_ip.substr(1, inst->remote_ip.size() - 2);
    inst->adopted = true;
    inst->persisted = true;  // state_file_.open() below writes it
    inst->state = e.ready ? Instance::State::running : Instance::State::starting;
    inst->ready_via = e.ready ? "adopted" : nullptr;
    auto age = e.started_boot_ms > 0
                   ? std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::chrono::milliseconds(boot_now_ms - e.started_boot_ms))
                   : wall_now - std::chrono::system_clock::time_point(
                                    std::chrono::milliseconds(e.started_unix_ms));
    inst->started = now - std::chrono::duration_cast<Clock::duration>(age);
    inst->started_wall =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(e.started_unix_ms));
    SocketState* socket = find_socket(e.socket);
    if (socket) {
      inst->plan = socket->service;
      auto peer = policy::IpAddress::parse(inst->remote_ip);
      inst->admission =
          admission_->adopt(socket->policy_id, peer ? *peer : policy::IpAddress(), e.ready, now);
      if (!e.ready && !socket->unit.accept) inst->role = Instance::Role::service_main;
    }
    if (socket && !socket->unit.accept) {
      inst->role = Instance::Role::service_main;
      socket->run.phase = e.ready ? ServiceRun::Phase::running : ServiceRun::Phase::main;
      socket->run.instance_key = inst->key;
    }
    Instance& ref = *inst;
    by_pid_[ref.pid] = ref.key;
    instances_.emplace(ref.key, std::move(inst));
    watch_exit(ref);
    if (ref.state == Instance::State::starting && socket) {
      if (ref.plan && ref.plan->ready_log && ref.plan->unit.type != units::ServiceType::notify) {
        // Its readiness would come through the capture of its stderr, which ended with the
        // usherd that made it: it can never be seen. Timing it out would kill a login that
        // may have succeeded meanwhile, for a channel usherd itself lost; its startup ends
        // as unknown instead (counted, and said once). The notify socket, bound again at the
        // same path, survives: a Type=notify instance keeps its deadline.
        ++startups_unknown_;
        spdlog::warn(
            "adopt instance={} pid={}: its X-ReadyLog= capture did not survive the "
            "restart; startup ended as unknown",
            ref.name, ref.pid);
        mark_ready(ref, "unknown", now);
      } else {
        auto timeout = socket->unit.startup_timeout.value_or(daemon_config_.startup_timeout);
        auto left = to_timer_duration(timeout) - (now - ref.started);
        if (timeout.count() > 0) arm_startup_timeout(ref, std::max(left, Clock::duration(0)));
      }
    }
    live.push_back(e);
  }
  if (!entries.empty()) {
    spdlog::warn(
        "adopt instances={} from {}; {} ended while usherd was not running (their exit "
        "statuses are unknown and no penalty was applied)",
        live.size(), path, ended);
  }
  if (auto r = state_file_.open(path, live); !r)
    spdlog::warn("state file {}: {}; instances will not be re-adopted after a crash", path,
                 r.error().to_string());
}

bool Daemon::stop_instance(const std::string& name) {
  for (auto& [key, inst] : instances_) {
    if (inst->name != name) continue;
    stop_as_unit_says(*inst);
    return true;
  }
  return false;
}

int Daemon::run() {
  started_at_ = Clock::now();
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
  dev_null_.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
  under_systemd_ = std::getenv("NOTIFY_SOCKET") != nullptr;
  if (const char* w = std::getenv("WATCHDOG_USEC"); w && under_systemd_) watchdog_ = true;
  auto watch = activation::ExitWatch::create();
  if (!watch) {
    spdlog::critical("exit watch: {}", watch.error().to_string());
    return 1;
  }
  exit_watch_.emplace(std::move(*watch));
  exit_watch_io_ = std::make_unique<asio::posix::stream_descriptor>(io_, exit_watch_->fd());
  wait_for_exits();
  int inherited = collect_inherited_listeners();
  if (inherited > 0) spdlog::info("adopt listeners={} passed by the service manager", inherited);

  std::string report;
  if (!load(true, report)) {
    spdlog::critical("{}", report);
    return 1;
  }
  adopt_from_state_file();
  start_notify_socket();
  start_control();
  start_metrics_listener();
  start_signals();
  housekeeping();
  // "start" is the event tests and operators wait for: listeners, the notify socket and the
  // control socket are all in place by now.
  spdlog::info("start {}", report);
  if (under_systemd_) sd_notify(0, "READY=1");
  io_.run();
  return 0;
}

}  // namespace usherd::supervisor

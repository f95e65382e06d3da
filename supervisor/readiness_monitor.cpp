#include "supervisor/readiness_monitor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <unistd.h>
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "activation/notify.h"
#include "activation/ready_log.h"
#include "supervisor/convert.h"
#include "supervisor/instance_life.h"
#include "supervisor/logging.h"

namespace usherd::supervisor {
namespace {

constexpr std::size_t kMaxRecord = 4096;
// STATUS= lines an instance may have logged per window; the rest are counted in one line.
constexpr unsigned kStatusBurst = 10;
constexpr auto kStatusWindow = std::chrono::seconds(10);

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

units::NotifyAccess notify_access(const Instance& instance) {
  return instance.plan ? instance.plan->unit.notify_access : units::NotifyAccess::main;
}

}  // namespace

ReadinessMonitor::ReadinessMonitor(asio::io_context& io, InstanceTable& instances)
    : io_(io), instances_(instances) {}

void ReadinessMonitor::start(const std::string& path) {
  auto fd = activation::open_notify_socket(path);
  if (!fd) {
    spdlog::error("notify socket {}: {}", path, fd.error().to_string());
    return;
  }
  notify_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd->release());
  arm_notify();
}

void ReadinessMonitor::arm_notify() {
  notify_->async_wait(asio::posix::stream_descriptor::wait_read,
                      [this](const boost::system::error_code& ec) {
                        if (ec) return;
                        on_notification();
                        arm_notify();
                      });
}

Instance* ReadinessMonitor::attribute_sender(pid_t sender, std::uint64_t sender_inode) {
  if (sender_inode != 0) {
    // The kernel named the sending process itself (SCM_PIDFD): the pid must still be that
    // process, or a datagram queued by one that has since been reaped would be credited to
    // whoever was given its pid next.
    auto now_there = activation::open_pidfd(sender);
    if (!now_there || activation::pidfd_inode(now_there->get()).value_or(0) != sender_inode)
      return nullptr;
  }
  if (Instance* direct = instances_.find_by_pid(sender)) {
    if (sender_inode != 0 && direct->pidfd_inode != 0 && direct->pidfd_inode != sender_inode)
      return nullptr;
    return notify_access(*direct) == units::NotifyAccess::none ? nullptr : direct;
  }
  // NotifyAccess=all: walk up from the sender to an instance's main process. Bounded, and
  // stops at pid 1 or at usherd itself.
  pid_t pid = sender;
  for (int depth = 0; depth < 32; ++depth) {
    auto parent = activation::parent_pid(pid);
    if (!parent || *parent <= 1 || *parent == getpid()) return nullptr;
    if (Instance* owner = instances_.find_by_pid(*parent))
      return notify_access(*owner) == units::NotifyAccess::all ? owner : nullptr;
    pid = *parent;
  }
  return nullptr;
}

void ReadinessMonitor::on_notification() {
  for (int i = 0; i < 64; ++i) {
    auto received = activation::receive_notification(notify_->native_handle(), fd_closer_);
    if (!received) {
      if (received.error().code == EAGAIN || received.error().code == EWOULDBLOCK) return;
      ++notify_rejected_;
      continue;
    }
    if (!*received) return;
    const activation::Notification& note = **received;
    Instance* instance =
        note.sender ? attribute_sender(note.sender->pid, note.sender_pidfd_inode) : nullptr;
    const char* problem = activation::notify_problem(note);
    if (instance == nullptr || problem != nullptr) {
      ++notify_rejected_;
      spdlog::debug("notify rejected sender_pid={} bytes={} reason={}",
                    note.sender ? note.sender->pid : 0, note.payload.size(),
                    problem ? problem : "unattributed");
      continue;
    }
    for (const auto& [key, value] : activation::parse_notify_payload(note.payload)) {
      if (key == "READY" && value == "1") {
        if (instance->state == Instance::State::running &&
            instance->role == Instance::Role::service_main) {
          if (instance->owner) instance->owner->instance_ready_again(*instance);
        } else {
          mark_ready(*instance, "notify", Clock::now());
        }
      } else if (key == "STOPPING" && value == "1") {
        LifeStep step = next_step(instance->state, LifeEvent::stopping_notified);
        if (step.action == LifeAction::arm_stop_deadline) {
          instance->state = step.state;
          instance->stopping_by_itself = true;
          arm_stop_timeout(*instance);
        }
      } else if (key == "STATUS") {
        if (!instance->status_log)
          instance->status_log =
              std::make_unique<DropLog>(kStatusBurst, kStatusWindow, "status lines suppressed");
        if (instance->status_log->allow(Clock::now(), instance->socket))
          spdlog::info("status instance={} {}", instance->name, quote_untrusted(value));
      }
    }
  }
}

void ReadinessMonitor::watch_output(Instance& instance) {
  std::uint64_t key = instance.key;
  instance.output->async_wait(asio::posix::stream_descriptor::wait_read,
                              [this, key](const boost::system::error_code& ec) {
                                if (ec) return;
                                if (Instance* inst = instances_.find(key)) on_output(*inst);
                              });
}

void ReadinessMonitor::on_output(Instance& instance) {
  // SOCK_SEQPACKET: each recv() is exactly one write() of the instance, cut at kMaxRecord.
  // Drain what is queued now (bounded), then wait again; EOF means every writer closed.
  char buf[kMaxRecord];
  for (int i = 0; i < 64; ++i) {
    auto n =
        activation::receive_record(instance.output->native_handle(), buf, sizeof buf, fd_closer_);
    if (!n) {
      if (n.error().code == EAGAIN || n.error().code == EWOULDBLOCK) break;
      instance.output.reset();
      return;
    }
    if (*n == 0) {
      instance.output.reset();
      return;
    }
    std::string_view record(buf, *n);
    if (instance.state == Instance::State::starting && instance.plan && instance.plan->ready_log &&
        instance.plan->ready_log->matches_record(record)) {
      mark_ready(instance, "log", Clock::now());
    }
    while (!record.empty() && (record.back() == '\n' || record.back() == '\r'))
      record.remove_suffix(1);
    auto log = output_logs_.try_emplace(instance.socket, 200, std::chrono::seconds(10),
                                        "output records suppressed");
    if (log.first->second.allow(Clock::now(), instance.socket))
      log_structured(
          spdlog::level::info,
          fmt::format("output instance={} {}", instance.name, quote_untrusted(record, 1024)),
          instance.name, instance.socket, instance.remote_ip);
  }
  watch_output(instance);
}

void ReadinessMonitor::drain(Instance& instance) {
  std::uint64_t key = instance.key;
  if (notify_) on_notification();
  Instance* still = instances_.find(key);
  if (still && still->output && still->plan && still->plan->ready_log) on_output(*still);
}

void ReadinessMonitor::drain_output(Instance& instance) {
  if (instance.output) on_output(instance);
}

void ReadinessMonitor::flush_logs(Clock::time_point now) {
  for (auto& [socket, log] : output_logs_) log.flush(now, socket);
}

void ReadinessMonitor::mark_ready(Instance& instance, const char* via, Clock::time_point now) {
  LifeStep step = next_step(instance.state, LifeEvent::ready);
  if (step.action != LifeAction::became_ready) return;
  instance.state = step.state;
  instance.ready_via = via;
  if (instance.timer) instance.timer->cancel();
  instances_.persist(instance, StateFile::Event::ready);
  if (instance.owner) instance.owner->instance_ready(instance, via, now);
  if (std::string_view(via) != "exec") {
    log_structured(spdlog::level::info,
                   fmt::format("ready instance={} after={:.3f}s via={}", instance.name,
                               seconds_between(instance.started, now), via),
                   instance.name, instance.socket, instance.remote_ip);
  }
}

void ReadinessMonitor::resume_startup(Instance& instance, units::Duration timeout,
                                      Clock::time_point now) {
  if (instance.plan && instance.plan->ready_log &&
      instance.plan->unit.type != units::ServiceType::notify) {
    readiness_lost(instance, now);
    return;
  }
  auto left = to_timer_duration(timeout) - (now - instance.started);
  if (timeout.count() > 0) arm_startup_timeout(instance, std::max(left, Clock::duration(0)));
}

void ReadinessMonitor::readiness_lost(Instance& instance, Clock::time_point now) {
  // Its readiness would come through the capture of its stderr, which ended with the
  // usherd that made it: it can never be seen. Timing it out would kill a login that may
  // have succeeded meanwhile, for a channel usherd itself lost; its startup ends as unknown
  // instead (counted, and said once). The notify socket, bound again at the same path,
  // survives: a Type=notify instance keeps its deadline.
  ++startups_unknown_;
  spdlog::warn(
      "adopt instance={} pid={}: its X-ReadyLog= capture did not survive the restart; startup "
      "ended as unknown",
      instance.name, instance.pid);
  mark_ready(instance, "unknown", now);
}

void ReadinessMonitor::arm_startup_timeout(Instance& instance, Clock::duration timeout) {
  instances_.arm_timer(instance, timeout, [this](Instance& inst) {
    if (next_step(inst.state, LifeEvent::startup_deadline).action != LifeAction::time_out) return;
    ++startup_timeouts_;
    inst.timed_out = true;
    spdlog::warn("timeout instance={} socket={} peer={} startup not finished after {:.1f}s",
                 inst.name, inst.socket, inst.peer, seconds_between(inst.started, Clock::now()));
    instances_.stop_as_unit_says(inst);
  });
}

void ReadinessMonitor::arm_stop_timeout(Instance& instance) {
  // STOPPING=1 from a ready instance: TimeoutStopSec= from now, then KillSignal=.
  instances_.arm_timer(instance, to_timer_duration(InstanceTable::timeout_stop_of(instance)),
                       [this](Instance& inst) {
                         spdlog::warn(
                             "timeout instance={} socket={} still stopping {:.1f}s after "
                             "STOPPING=1",
                             inst.name, inst.socket, seconds_between(inst.started, Clock::now()));
                         instances_.stop_as_unit_says(inst);
                       });
}

}  // namespace usherd::supervisor

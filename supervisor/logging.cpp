#include "supervisor/logging.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/sinks/stdout_sinks.h>
#include <systemd/sd-journal.h>

namespace usherd::supervisor {
namespace {

bool g_journal = false;

// systemd.exec(5): JOURNAL_STREAM=DEV:INODE is set when stdout/stderr are connected to the
// journal; a process must compare it with fstat() of its stderr before trusting it, since
// the variable is inherited by children whose stderr may have been redirected.
bool stderr_is_journal() {
  const char* value = std::getenv("JOURNAL_STREAM");
  if (value == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(value, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LOG_DEBUG;
    case spdlog::level::info:
      return LOG_INFO;
    case spdlog::level::warn:
      return LOG_WARNING;
    case spdlog::level::err:
      return LOG_ERR;
    case spdlog::level::critical:
      return LOG_CRIT;
    default:
      return LOG_INFO;
  }
}

}  // namespace

bool setup_logging(std::string_view level) {
  g_journal = stderr_is_journal();
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
  auto logger = std::make_shared<spdlog::logger>("usherd", sink);
  // The journal stamps records itself; stderr gets a timestamp for people reading a file.
  logger->set_pattern(g_journal ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  std::string name(level);
  if (name == "warning") name = "warn";
  if (name == "error") name = "err";
  auto parsed = spdlog::level::from_str(name);
  bool ok = parsed != spdlog::level::off || name == "off";
  spdlog::set_level(ok ? parsed : spdlog::level::info);
  return ok;
}

bool logging_to_journal() {
  return g_journal;
}

void log_structured(spdlog::level::level_enum level, std::string_view message,
                    std::string_view instance, std::string_view socket,
                    std::string_view remote_addr) {
  if (!spdlog::should_log(level)) return;
  if (!g_journal) {
    spdlog::log(level, "{}", message);
    return;
  }
  std::string msg = "MESSAGE=" + std::string(message);
  std::string inst = "INSTANCE=" + std::string(instance);
  std::string sock = "SOCKET=" + std::string(socket);
  std::string addr = "REMOTE_ADDR=" + std::string(remote_addr);
  std::string prio = "PRIORITY=" + std::to_string(syslog_priority(level));
  // Named explicitly: sd_journal_sendv() would take program_invocation_short_name, which
  // points into the argv memory usherd's process title is written over.
  std::string ident = "SYSLOG_IDENTIFIER=usherd";
  struct iovec iov[6];
  int n = 0;
  auto add = [&](std::string& s, bool present) {
    if (!present) return;
    iov[n].iov_base = s.data();
    iov[n].iov_len = s.size();
    ++n;
  };
  add(msg, true);
  add(prio, true);
  add(ident, true);
  add(inst, !instance.empty());
  add(sock, !socket.empty());
  add(addr, !remote_addr.empty());
  sd_journal_sendv(iov, n);
}

}  // namespace usherd::supervisor

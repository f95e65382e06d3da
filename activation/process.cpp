// pidfd and /proc helpers (see process.h).
#include "activation/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace usherd::activation {
namespace {

constexpr long kPidfsMagic = 0x50494446;  // PIDFS_MAGIC, linux/magic.h (Linux 6.9+)

ExitStatus to_exit_status(const siginfo_t& info) {
  ExitStatus status;
  status.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  status.core_dumped = info.si_code == CLD_DUMPED;
  status.code_or_signal = info.si_status;
  return status;
}

// A stat line is well under 1 KiB (52 numeric fields and a comm of at most 64 bytes).
using StatBuffer = char[1024];

// Reads /proc/PID/stat into buffer and returns what follows the comm, i.e. the text from field
// 3 ("state") on, found after the last ')' so a comm containing spaces or parentheses cannot
// shift the fields. Raw open/read/close into the caller's stack buffer: this runs once per
// spawned instance (its start time goes into the state file), so no stream and no
// allocation except on the error path.
Result<std::string_view> read_stat(pid_t pid, StatBuffer& buffer) {
  char path[40] = "/proc/";
  char* digits_end = std::to_chars(path + 6, path + 28, pid).ptr;
  std::memcpy(digits_end, "/stat", 6);  // with the terminating NUL
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(std::string("open ") + path);
  ssize_t n;
  do {
    n = ::read(fd, buffer, sizeof buffer - 1);
  } while (n < 0 && errno == EINTR);
  int read_errno = errno;
  ::close(fd);
  if (n < 0) return fail(std::string("read ") + path, read_errno);
  std::string_view line(buffer, static_cast<std::size_t>(n));
  auto paren = line.rfind(')');
  if (paren == std::string_view::npos) return fail(std::string("parse ") + path, EINVAL);
  return line.substr(paren + 1);
}

// Field field_number (1-based, >= 3) of /proc/PID/stat as text.
Result<std::string_view> stat_field_text(pid_t pid, std::size_t field_number, StatBuffer& buffer) {
  auto rest = read_stat(pid, buffer);
  if (!rest) return rest;
  std::size_t field = 2;  // the comm
  std::size_t pos = 0;
  for (;;) {
    while (pos < rest->size() && ((*rest)[pos] == ' ' || (*rest)[pos] == '\n')) ++pos;
    if (pos >= rest->size()) return fail("short /proc/PID/stat", EINVAL);
    std::size_t end = pos;
    while (end < rest->size() && (*rest)[end] != ' ' && (*rest)[end] != '\n') ++end;
    if (++field == field_number) return rest->substr(pos, end - pos);
    pos = end;
  }
}

template <class T>
Result<T> stat_field(pid_t pid, std::size_t field_number) {
  StatBuffer buffer;
  auto text = stat_field_text(pid, field_number, buffer);
  if (!text) return tl::unexpected(text.error());
  T value{};
  auto [last, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || last != text->data() + text->size())
    return fail("parse /proc/PID/stat field " + std::to_string(field_number), EINVAL);
  return value;
}

}  // namespace

Result<UniqueFd> open_pidfd(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return fail_errno("pidfd_open " + std::to_string(pid));
  return UniqueFd(fd);
}

Result<void> send_signal(int pidfd, int sig) {
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0)
    return fail_errno("pidfd_send_signal " + std::to_string(sig));
  return {};
}

Result<ExitWatch> ExitWatch::create() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return fail_errno("epoll_create1");
  return ExitWatch(UniqueFd(fd));
}

namespace {

Result<void> control_exit_watch(int epoll, int op, int pidfd, std::uint64_t key) {
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = key;
  if (::epoll_ctl(epoll, op, pidfd, &ev) != 0) return fail_errno("epoll_ctl pidfd");
  return {};
}

}  // namespace

Result<void> ExitWatch::watch(int pidfd, std::uint64_t key) {
  return control_exit_watch(epoll_.get(), EPOLL_CTL_ADD, pidfd, key);
}

Result<void> ExitWatch::rearm(int pidfd, std::uint64_t key) {
  return control_exit_watch(epoll_.get(), EPOLL_CTL_MOD, pidfd, key);
}

std::size_t ExitWatch::take(std::vector<std::uint64_t>& keys, std::size_t limit) {
  struct epoll_event events[64];
  int max = static_cast<int>(std::min<std::size_t>(limit, std::size(events)));
  if (max <= 0) return 0;
  int n;
  do {
    n = ::epoll_wait(epoll_.get(), events, max, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  for (int i = 0; i < n; ++i) keys.push_back(events[i].data.u64);
  return static_cast<std::size_t>(n);
}

Result<std::optional<ExitStatus>> try_reap(int pidfd) {
  siginfo_t info{};
  for (;;) {
    if (waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED | WNOHANG) == 0) break;
    if (errno != EINTR) return fail_errno("waitid pidfd");
  }
  // WNOHANG with nothing to report leaves si_pid at 0 (we zeroed it).
  if (info.si_pid == 0) return std::optional<ExitStatus>();
  return std::optional<ExitStatus>(to_exit_status(info));
}

Result<std::uint64_t> process_start_time(pid_t pid) {
  return stat_field<std::uint64_t>(pid, 22);
}

Result<std::uint64_t> pidfd_inode(int pidfd) {
  // Whether pidfds are on pidfs is a property of the running kernel: asked once.
  static const bool on_pidfs = [pidfd] {
    struct statfs fs {};
    return ::fstatfs(pidfd, &fs) == 0 && fs.f_type == kPidfsMagic;
  }();
  if (!on_pidfs) return 0;
  struct stat st {};
  if (::fstat(pidfd, &st) != 0) return fail_errno("fstat pidfd");
  return static_cast<std::uint64_t>(st.st_ino);
}

Result<bool> has_ended(pid_t pid) {
  StatBuffer buffer;
  auto state = stat_field_text(pid, 3, buffer);
  if (!state) return tl::unexpected(state.error());
  return *state == "Z" || *state == "X";
}

Result<pid_t> parent_pid(pid_t pid) {
  return stat_field<pid_t>(pid, 4);
}

Result<pid_t> process_session(pid_t pid) {
  return stat_field<pid_t>(pid, 6);
}

Result<std::string> boot_id() {
  UniqueFd fd(::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open boot_id");
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return fail_errno("read boot_id");
  std::string id(buf, static_cast<std::size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  if (id.empty()) return fail("empty boot_id", EINVAL);
  return id;
}

bool is_descendant(pid_t pid, pid_t ancestor) {
  // Bounded walk: a pid chain cannot be longer than the pid space, and a vanished process
  // ends it.
  for (int depth = 0; depth < 4096 && pid > 1; ++depth) {
    if (pid == ancestor) return true;
    auto parent = parent_pid(pid);
    if (!parent) return false;
    pid = *parent;
  }
  return pid == ancestor;
}

Result<void> become_child_subreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return fail_errno("prctl PR_SET_CHILD_SUBREAPER");
  return {};
}

Result<rlim_t> raise_nofile_to_hard() {
  struct rlimit lim {};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return fail_errno("getrlimit RLIMIT_NOFILE");
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return fail_errno("setrlimit RLIMIT_NOFILE");
  return lim.rlim_cur;
}

std::vector<pid_t> reap_untracked(const std::function<bool(pid_t)>& is_tracked) {
  std::vector<pid_t> reaped;
  bool tracked_waiting = false;
  // Fast path: peek at the first ended child (WNOWAIT leaves it waitable) and reap it by pid
  // only when nobody tracks it.
  for (;;) {
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
    pid_t pid = info.si_pid;
    if (is_tracked(pid)) {
      tracked_waiting = true;
      break;
    }
    siginfo_t done{};
    if (waitid(P_PID, pid, &done, WEXITED | WNOHANG) != 0 || done.si_pid != pid) break;
    reaped.push_back(pid);
  }
  if (!tracked_waiting) return reaped;
  // A tracked child that has ended stays at the head of the queue until its owner reaps it,
  // hiding the others from P_ALL: look at every child by pid instead (/proc lists them per
  // thread, zombies included).
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream children(task.path() / "children");
    for (pid_t pid; children >> pid;) {
      if (is_tracked(pid)) continue;
      siginfo_t done{};
      if (waitid(P_PID, pid, &done, WEXITED | WNOHANG) == 0 && done.si_pid == pid)
        reaped.push_back(pid);
    }
  }
  return reaped;
}

}  // namespace usherd::activation

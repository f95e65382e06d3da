#include "supervisor/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <fmt/format.h>

namespace usherd::supervisor {
namespace {

// Field values never contain a tab or a newline (unit names and addresses), but a hand-edited
// file might: such characters are replaced so one entry always stays one line.
void append_clean(std::string& out, std::string_view text) {
  std::size_t from = out.size();
  out.append(text);
  for (std::size_t i = from; i < out.size(); ++i)
    if (out[i] == '\t' || out[i] == '\n') out[i] = ' ';
}

// An "r" or "-" line belongs to the "+" line of the same pid only if it names the same
// process (a reused pid has another identity).
constexpr std::string_view kHeader = "#usherd-state\tboot=";

bool same_process(const StateEntry& a, const StateEntry& b) {
  return a.pidfd_inode == b.pidfd_inode && a.start_time == b.start_time;
}

bool write_all(int fd, const std::string& data) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void append_state_line(std::string& out, char op, const StateEntryView& e) {
  auto to = std::back_inserter(out);
  // The ninth field goes first among the new ones: readers of the 8-field form skip the
  // line whole rather than misread it.
  if (e.pidfd_inode)
    fmt::format_to(to, "{}\t{}\ti{}\t{}\t{}\t", op, e.pid, e.pidfd_inode, e.started_unix_ms,
                   e.ready ? 1 : 0);
  else
    fmt::format_to(to, "{}\t{}\t{}\t{}\t{}\t", op, e.pid, e.start_time, e.started_unix_ms,
                   e.ready ? 1 : 0);
  append_clean(out, e.socket);
  out += '\t';
  append_clean(out, e.name);
  out += '\t';
  append_clean(out, e.peer);
  fmt::format_to(to, "\tb{}\n", e.started_boot_ms);
}

std::string encode_state_line(char op, const StateEntry& e) {
  std::string line;
  append_state_line(line, op, e.view());
  return line;
}

bool decode_state_line(const std::string& line, char& op, StateEntry& e) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) fields.push_back(field);
  if ((fields.size() != 8 && fields.size() != 9) || fields[0].size() != 1) return false;
  e = StateEntry{};
  op = fields[0][0];
  if (op != '+' && op != 'r' && op != '-') return false;
  try {
    e.pid = static_cast<pid_t>(std::stol(fields[1]));
    if (!fields[2].empty() && fields[2][0] == 'i')
      e.pidfd_inode = std::stoull(fields[2].substr(1));
    else
      e.start_time = std::stoull(fields[2]);
    e.started_unix_ms = std::stoll(fields[3]);
    if (fields.size() == 9) {
      if (fields[8].size() < 2 || fields[8][0] != 'b') return false;
      e.started_boot_ms = std::stoll(fields[8].substr(1));
    }
  } catch (...) {
    return false;
  }
  if (e.pid <= 0) return false;
  e.ready = fields[4] == "1";
  e.socket = fields[5];
  e.name = fields[6];
  e.peer = fields[7];
  return true;
}

Result<std::vector<StateEntry>> StateFile::read(const std::string& path, std::string_view boot_id) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) return std::vector<StateEntry>();
    return fail_errno("open " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat " + path);
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
    return fail(path +
                    " is not a regular file of usherd's own, writable by it alone; "
                    "nothing in it is trusted",
                EPERM);
  std::string text;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read " + path);
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  std::istringstream in(text);
  std::string line;
  if (text.rfind(kHeader, 0) == 0) {
    std::getline(in, line);
    std::string_view written = std::string_view(line).substr(std::string_view(kHeader).size());
    if (written != boot_id)
      return fail(path + " was written in another boot (" + std::string(written) +
                      "); its processes are gone",
                  ESTALE);
  }
  std::map<pid_t, StateEntry> live;
  std::vector<pid_t> order;
  while (std::getline(in, line)) {
    char op = 0;
    StateEntry e;
    if (!decode_state_line(line, op, e)) continue;  // a torn last line, or garbage
    if (op == '+') {
      if (!live.count(e.pid)) order.push_back(e.pid);
      live[e.pid] = e;
    } else if (op == 'r') {
      auto it = live.find(e.pid);
      if (it != live.end() && same_process(it->second, e)) it->second.ready = true;
    } else {
      auto it = live.find(e.pid);
      if (it != live.end() && same_process(it->second, e)) live.erase(it);
    }
  }
  std::vector<StateEntry> out;
  for (pid_t pid : order)
    if (auto it = live.find(pid); it != live.end()) out.push_back(it->second);
  return out;
}

Result<void> StateFile::open(const std::string& path, const std::vector<StateEntry>& entries) {
  path_ = path;
  std::string dir_path = path.substr(0, path.rfind('/') + 1);
  std::string name = path.substr(dir_path.size());
  std::string tmp = name + ".new";
  if (dir_path.empty()) dir_path = ".";
  UniqueFd dir(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return fail_errno("open " + dir_path);
  // Whatever is at PATH.new (a torn earlier attempt, or something planted) goes; the new file
  // is created, never opened through a name someone else prepared.
  if (::unlinkat(dir.get(), tmp.c_str(), 0) != 0 && errno != ENOENT)
    return fail_errno("unlink " + path + ".new");
  UniqueFd fd(
      ::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create " + path + ".new");
  std::string data = std::string(kHeader) + boot_id_ + "\n";
  for (const auto& e : entries) append_state_line(data, '+', e.view());
  if (!write_all(fd.get(), data)) return fail_errno("write " + path + ".new");
  if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0)
    return fail_errno("rename " + path + ".new");
  fd_ = std::move(fd);  // the same file, now at PATH; appended to from here on
  if (::lseek(fd_.get(), 0, SEEK_END) < 0) return fail_errno("seek " + path);
  buffer_.clear();  // the entries written above include everything it held
  lines_ = entries.size();
  return {};
}

void StateFile::record(Event event, const StateEntryView& entry) {
  if (!fd_) return;
  char op = event == Event::spawned ? '+' : event == Event::ready ? 'r' : '-';
  append_state_line(buffer_, op, entry);
  ++lines_;
}

void StateFile::flush() {
  if (buffer_.empty() || !fd_) return;
  // One write with O_APPEND: whole lines, in order; a failure here loses only the ability
  // to re-adopt after a crash, never a connection, so it is not fatal.
  (void)write_all(fd_.get(), buffer_);
  buffer_.clear();
}

void StateFile::remove() {
  if (path_.empty()) return;
  buffer_.clear();
  fd_.reset();
  ::unlink(path_.c_str());
}

}  // namespace usherd::supervisor

// The spawn audit: what a child really inherits (fds, NOFILE, signals, session, environment),
// how failures before exec are reported, the credentials drop, and the seed incident (a
// child that closes every fd up to its hard limit one by one).
#include "activation/spawn.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "activation/credentials.h"
#include "activation/process.h"
#include "activation/spawn_child.h"
#include "tests/activation/test_support.h"

using namespace usherd;
using namespace usherd::activation;
using namespace usherd::activation::test;

namespace {

// The probe's report, parsed.
struct ProbeReport {
  pid_t pid = 0;
  pid_t sid = 0;
  pid_t pgid = 0;
  int pdeathsig = -1;
  std::string tty;
  std::map<int, std::string> fds;  // fd -> "block" | "nonblock"
  rlim_t nofile_soft = 0;
  rlim_t nofile_hard = 0;
  std::string sigblk;
  std::string sigign;
  std::string cwd;
  std::string umask;
  std::vector<std::string> env;
  bool complete = false;
};

ProbeReport parse_report(const std::string& text) {
  ProbeReport report;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "pid")
      words >> report.pid;
    else if (key == "sid")
      words >> report.sid;
    else if (key == "pgid")
      words >> report.pgid;
    else if (key == "tty")
      words >> report.tty;
    else if (key == "pdeathsig")
      words >> report.pdeathsig;
    else if (key == "fd") {
      int fd;
      std::string mode;
      words >> fd >> mode;
      report.fds[fd] = mode;
    } else if (key == "nofile")
      words >> report.nofile_soft >> report.nofile_hard;
    else if (key == "sigblk")
      words >> report.sigblk;
    else if (key == "sigign")
      words >> report.sigign;
    else if (key == "cwd")
      report.cwd = line.substr(4);
    else if (key == "umask")
      words >> report.umask;
    else if (key == "env")
      report.env.push_back(line.substr(4));
    else if (key == "end")
      report.complete = true;
  }
  return report;
}

// Restores the test process's NOFILE limits, signal mask and dispositions when done.
class ParentStateGuard {
 public:
  ParentStateGuard() {
    getrlimit(RLIMIT_NOFILE, &nofile_);
    sigprocmask(SIG_SETMASK, nullptr, &mask_);
    sigaction(SIGUSR2, nullptr, &usr2_);
    sigaction(SIGHUP, nullptr, &hup_);
  }
  ~ParentStateGuard() {
    setrlimit(RLIMIT_NOFILE, &nofile_);
    sigprocmask(SIG_SETMASK, &mask_, nullptr);
    sigaction(SIGUSR2, &usr2_, nullptr);
    sigaction(SIGHUP, &hup_, nullptr);
  }
  ParentStateGuard(const ParentStateGuard&) = delete;
  ParentStateGuard& operator=(const ParentStateGuard&) = delete;

 private:
  rlimit nofile_{};
  sigset_t mask_{};
  struct sigaction usr2_ {};
  struct sigaction hup_ {};
};

// Opens count fds WITHOUT close-on-exec: the leak a careless spawn would pass on.
std::vector<UniqueFd> open_leaky_fds(int count) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < count; ++i) {
    UniqueFd fd(::open("/dev/null", O_RDONLY));
    REQUIRE(fd);
    fds.push_back(std::move(fd));
  }
  return fds;
}

// Makes the parent as hostile as a long-running daemon can be: soft NOFILE at the hard
// limit, hundreds of inheritable fds, a blocked signal and two ignored ones.
void make_parent_hostile() {
  REQUIRE(raise_nofile_to_hard());
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  REQUIRE(sigprocmask(SIG_BLOCK, &block, nullptr) == 0);
  signal(SIGUSR2, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
}

rlim_t expected_hard() {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  return std::min<rlim_t>(lim.rlim_max, kDefaultNofileHardMax);
}

// fd_probe as a LISTEN_FDS service: /dev/null on 0-2, the connection on 3, LISTEN_PID set by
// the child, started in /tmp.
SpawnPlan listen_fds_probe(int null_fd, int connection_fd, std::vector<std::string> env) {
  SpawnPlan plan;
  plan.path = helper("fd_probe");
  plan.argv = {"fd_probe", "3"};
  plan.env = std::move(env);
  plan.set_listen_pid = true;
  plan.fds = {{null_fd, 0}, {null_fd, 1}, {null_fd, 2}, {connection_fd, 3}};
  plan.working_directory = "/tmp";
  return plan;
}

bool no_zombie_children() {
  siginfo_t info{};
  int rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return (rc != 0 && errno == ECHILD) || (rc == 0 && info.si_pid == 0);
}

}  // namespace

TEST_CASE(
    "a connection-style child sees only fds 0-2, a blocking socket, NOFILE 1024 and "
    "a clean signal state",
    "[activation][spawn]") {
  ParentStateGuard guard;
  make_parent_hostile();
  auto leaks = open_leaky_fds(300);
  auto [ours, theirs] = make_socketpair(SOCK_NONBLOCK);
  auto null = open_dev_null();

  SpawnPlan plan;
  plan.path = helper("fd_probe");
  plan.argv = {"fd_probe", "1"};
  plan.env = {"PATH=/usr/bin:/bin", "GREETING=hello world"};
  plan.fds = {{theirs.get(), 0}, {theirs.get(), 1}, {null.get(), 2}};
  plan.clear_nonblock = {0};
  auto child = spawn(plan);
  REQUIRE(child);
  theirs.reset();

  auto report = parse_report(read_all(ours.get()));
  REQUIRE(report.complete);
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);

  CHECK(report.pid == child->pid);
  CHECK(report.fds == std::map<int, std::string>{{0, "block"}, {1, "block"}, {2, "block"}});
  CHECK(report.nofile_soft == 1024);
  CHECK(report.nofile_hard == expected_hard());
  CHECK(report.nofile_hard <= kDefaultNofileHardMax);
  CHECK(report.sigblk == "0000000000000000");
  CHECK(report.sigign == "0000000000000000");
  CHECK(report.sid == report.pid);
  CHECK(report.pgid == report.pid);
  CHECK(report.tty == "0");  // its own session: no controlling terminal, whatever ours is
  CHECK(report.umask == "022");
  CHECK(report.env == std::vector<std::string>{"PATH=/usr/bin:/bin", "GREETING=hello world"});
}

TEST_CASE("with the dispositions noted, the child resets the noted ones and only those",
          "[activation][spawn]") {
  ParentStateGuard guard;
  make_parent_hostile();  // SIGUSR2 and SIGHUP ignored
  note_signal_dispositions();
  signal(SIGPIPE, SIG_IGN);  // changed after the note: the contract says note again
  auto [ours, theirs] = make_socketpair();
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = helper("fd_probe");
  plan.argv = {"fd_probe", "1"};
  plan.fds = {{theirs.get(), 0}, {theirs.get(), 1}, {null.get(), 2}};
  auto child = spawn(plan);
  forget_signal_dispositions();
  signal(SIGPIPE, SIG_DFL);
  REQUIRE(child);
  theirs.reset();
  auto report = parse_report(read_all(ours.get()));
  REQUIRE(report.complete);
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);
  // SIGHUP (bit 0) and SIGUSR2 (bit 11) were reset; SIGPIPE (bit 12) was not noted.
  CHECK(report.sigign == "0000000000001000");
}

TEST_CASE("a LISTEN_FDS-style child gets fd 3 as passed and LISTEN_PID equal to its own pid",
          "[activation][spawn]") {
  ParentStateGuard guard;
  make_parent_hostile();
  auto leaks = open_leaky_fds(300);
  auto [ours, theirs] = make_socketpair(SOCK_NONBLOCK);
  auto null = open_dev_null();

  SpawnPlan plan = listen_fds_probe(null.get(), theirs.get(),
                                    {"LISTEN_FDS=1", "LISTEN_PID=1", "LISTEN_FDNAMES=connection"});
  plan.umask = 077;
  auto child = spawn(plan);
  REQUIRE(child);
  theirs.reset();

  auto report = parse_report(read_all(ours.get()));
  REQUIRE(report.complete);
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);

  CHECK(report.fds ==
        std::map<int, std::string>{{0, "block"}, {1, "block"}, {2, "block"}, {3, "nonblock"}});
  CHECK(report.nofile_soft == 1024);
  CHECK(report.nofile_hard == expected_hard());
  CHECK(report.sigblk == "0000000000000000");
  CHECK(report.sigign == "0000000000000000");
  CHECK(report.sid == report.pid);
  CHECK(report.cwd == "/tmp");
  CHECK(report.umask == "077");
  CHECK(report.env == std::vector<std::string>{"LISTEN_FDS=1", "LISTEN_FDNAMES=connection",
                                               "LISTEN_PID=" + std::to_string(child->pid)});
}

TEST_CASE("fd mappings whose sources and targets cross are swapped, not clobbered",
          "[activation][spawn]") {
  auto [a_read, a_write] = make_pipe();
  auto [b_read, b_write] = make_pipe();
  // Put the write ends on 200 and 201 and ask for them crossed: 200 -> 201, 201 -> 200.
  REQUIRE(fcntl(200, F_GETFD) < 0);
  REQUIRE(fcntl(201, F_GETFD) < 0);
  UniqueFd a200(::dup3(a_write.get(), 200, O_CLOEXEC));
  UniqueFd b201(::dup3(b_write.get(), 201, O_CLOEXEC));
  REQUIRE(a200.get() == 200);
  REQUIRE(b201.get() == 201);
  a_write.reset();
  b_write.reset();
  auto null = open_dev_null();

  SpawnPlan plan;
  plan.path = "/bin/bash";
  plan.argv = {"bash", "-c", "echo to200 >&200; echo to201 >&201"};
  plan.fds = {{null.get(), 0}, {null.get(), 1}, {null.get(), 2}, {200, 201}, {201, 200}};
  auto child = spawn(plan);
  REQUIRE(child);
  a200.reset();
  b201.reset();
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);
  CHECK(read_all(a_read.get()) == "to201\n");
  CHECK(read_all(b_read.get()) == "to200\n");
}

TEST_CASE("a source that is also its own target survives the exec, and feeds another target",
          "[activation][spawn]") {
  auto [out_read, out_write] = make_pipe();
  REQUIRE(fcntl(150, F_GETFD) < 0);
  UniqueFd fd150(::dup3(out_write.get(), 150, O_CLOEXEC));
  REQUIRE(fd150.get() == 150);
  out_write.reset();
  auto null = open_dev_null();

  SpawnPlan plan;
  plan.path = "/bin/bash";
  plan.argv = {"bash", "-c", "echo a >&150; echo b >&151"};
  plan.fds = {{null.get(), 0}, {null.get(), 1}, {null.get(), 2}, {150, 150}, {150, 151}};
  auto child = spawn(plan);
  REQUIRE(child);
  fd150.reset();
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);
  CHECK(read_all(out_read.get()) == "a\nb\n");
}

TEST_CASE(
    "a missing executable is reported as an exec failure with ENOENT and leaves no "
    "zombie",
    "[activation][spawn]") {
  REQUIRE(no_zombie_children());
  SpawnPlan plan;
  plan.path = "/nonexistent/usherd-no-such-binary";
  plan.argv = {"x"};
  auto child = spawn(plan);
  REQUIRE_FALSE(child);
  CHECK(child.error().code == ENOENT);
  CHECK(child.error().message == "exec /nonexistent/usherd-no-such-binary");
  CHECK(child.error().to_string() ==
        "exec /nonexistent/usherd-no-such-binary: No such file or directory");
  CHECK(no_zombie_children());
}

TEST_CASE("a working directory that does not exist fails the spawn at chdir unless optional",
          "[activation][spawn]") {
  SpawnPlan plan;
  plan.path = "/bin/true";
  plan.argv = {"true"};
  plan.working_directory = "/nonexistent-usherd-dir";
  auto child = spawn(plan);
  REQUIRE_FALSE(child);
  CHECK(child.error().code == ENOENT);
  CHECK(child.error().message == "chdir /nonexistent-usherd-dir");
  CHECK(no_zombie_children());

  plan.working_directory_optional = true;
  auto optional_child = spawn(plan);
  REQUIRE(optional_child);
  CHECK(wait_exit(optional_child->pidfd.get()).code_or_signal == 0);
}

TEST_CASE("an explicit LimitNOFILE replaces the default and a bad one fails at setrlimit",
          "[activation][spawn]") {
  auto [ours, theirs] = make_socketpair();
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = helper("fd_probe");
  plan.argv = {"fd_probe", "1"};
  plan.fds = {{null.get(), 0}, {theirs.get(), 1}, {null.get(), 2}};
  plan.rlimits = {{RLIMIT_NOFILE, 256, 128}};  // soft above hard: EINVAL
  auto bad = spawn(plan);
  plan.rlimits = {{RLIMIT_NOFILE, 64, 128}};
  auto child = spawn(plan);
  REQUIRE(child);
  theirs.reset();
  auto report = parse_report(read_all(ours.get()));
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);
  CHECK(report.nofile_soft == 64);
  CHECK(report.nofile_hard == 128);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == EINVAL);
  CHECK(bad.error().message == "setrlimit");
}

TEST_CASE("a plan with a target mapped twice or a closed source is refused before cloning",
          "[activation][spawn]") {
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = "/bin/true";
  plan.fds = {{null.get(), 0}, {null.get(), 0}};
  CHECK_FALSE(spawn(plan));
  plan.fds = {{9999, 0}};
  auto closed = spawn(plan);
  REQUIRE_FALSE(closed);
  CHECK(closed.error().code == EBADF);
}

TEST_CASE("credentials drop to nobody sets uid, gid and groups as /proc reports them",
          "[activation][spawn][credentials]") {
  if (geteuid() != 0) {
    WARN("not root: the credentials drop cannot be tested");
    return;
  }
  auto creds = resolve_credentials("nobody", "", {});
  REQUIRE(creds);
  CHECK(creds->user == "nobody");
  auto [stdin_read, stdin_write] = make_pipe();
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = "/bin/cat";
  plan.argv = {"cat"};
  plan.fds = {{stdin_read.get(), 0}, {null.get(), 1}, {null.get(), 2}};
  plan.credentials = *creds;
  plan.no_new_privileges = true;
  auto child = spawn(plan);
  REQUIRE(child);

  // cat is blocked reading the pipe: its /proc entry is stable while we read it.
  std::ifstream status("/proc/" + std::to_string(child->pid) + "/status");
  std::map<std::string, std::string> fields;
  for (std::string line; std::getline(status, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    fields[line.substr(0, colon)] = value;
  }
  std::string uid = std::to_string(creds->uid);
  std::string gid = std::to_string(creds->gid);
  CHECK(fields["Uid"] == uid + "\t" + uid + "\t" + uid + "\t" + uid);
  CHECK(fields["Gid"] == gid + "\t" + gid + "\t" + gid + "\t" + gid);
  std::string groups;
  for (gid_t g : creds->groups) groups += (groups.empty() ? "" : " ") + std::to_string(g);
  CHECK(fields["Groups"] == groups);
  CHECK(fields["NoNewPrivs"] == "1");

  stdin_write.reset();
  CHECK(wait_exit(child->pidfd.get()).code_or_signal == 0);
}

TEST_CASE("numeric and unknown names resolve as systemd accepts them",
          "[activation][credentials]") {
  auto numeric = resolve_credentials("4242", "4343", {});
  REQUIRE(numeric);
  CHECK(numeric->uid == 4242);
  CHECK(numeric->gid == 4343);
  CHECK(numeric->groups == std::vector<gid_t>{4343});

  auto missing = resolve_credentials("usherd-no-such-user", "", {});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ENOENT);

  auto root = resolve_credentials("root", "", {"0", "daemon"});
  REQUIRE(root);
  CHECK(root->uid == 0);
  CHECK(root->home == "/root");
  CHECK(std::count(root->groups.begin(), root->groups.end(), 0) == 1);
  CHECK(std::count(root->groups.begin(), root->groups.end(), 1) == 1);  // daemon
}

TEST_CASE("the default NOFILE limit is 1024 soft and the inherited hard limit capped at 524288",
          "[activation][spawn][rlimit]") {
  auto [inherited, soft, hard] = GENERATE(table<rlim_t, rlim_t, rlim_t>({
      {1u << 30, 1024, 524288},
      {RLIM_INFINITY, 1024, 524288},
      {1048576, 1024, 524288},
      {524288, 1024, 524288},
      {20000, 1024, 20000},
      {512, 512, 512},
  }));
  RLimit lim = default_nofile_limit(inherited);
  CHECK(lim.resource == RLIMIT_NOFILE);
  CHECK(lim.soft == soft);
  CHECK(lim.hard == hard);
}

namespace {

struct CloseAllFigures {
  long limit = 0;
  long closed = 0;
  long long elapsed_us = 0;
};

CloseAllFigures run_close_all(const std::vector<RLimit>& rlimits) {
  auto [out_read, out_write] = make_pipe();
  auto null = open_dev_null();
  SpawnPlan plan;
  plan.path = helper("close_all");
  plan.argv = {"close_all"};
  plan.fds = {{null.get(), 0}, {out_write.get(), 1}, {null.get(), 2}};
  plan.rlimits = rlimits;
  auto child = spawn(plan);
  REQUIRE(child);
  out_write.reset();
  std::string text = read_all(out_read.get(), std::chrono::seconds(100));
  CHECK(wait_exit(child->pidfd.get(), std::chrono::seconds(100)).code_or_signal == 0);
  CloseAllFigures figures;
  std::string word;
  std::istringstream in(text);
  in >> word >> figures.limit >> word >> figures.closed >> word >> figures.elapsed_us;
  REQUIRE(word == "elapsed_us");
  return figures;
}

}  // namespace

TEST_CASE(
    "a child that closes every fd up to its hard limit finishes under the capped "
    "default hard limit",
    "[activation][spawn][seed]") {
  ParentStateGuard guard;
  // Give the parent the largest hard limit the kernel allows (as a daemon started with
  // LimitNOFILE=infinity would have), then show what the child inherits from it.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  std::ifstream nr_open_file("/proc/sys/fs/nr_open");
  rlim_t nr_open = 0;
  nr_open_file >> nr_open;
  if (nr_open > lim.rlim_max) {
    rlimit raised{nr_open, nr_open};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      lim = raised;
    else
      WARN("cannot raise the hard NOFILE limit to " << nr_open << " here; using " << lim.rlim_max);
  }
  REQUIRE(raise_nofile_to_hard());
  auto leaks = open_leaky_fds(100);

  auto capped = run_close_all({});
  CHECK(capped.limit == static_cast<long>(std::min<rlim_t>(lim.rlim_max, kDefaultNofileHardMax)));
  CHECK(capped.closed == 0);  // nothing leaked into the child for it to close
  WARN("close-all under the default hard limit " << capped.limit << ": " << capped.elapsed_us
                                                 << " us");

  auto inherited = run_close_all({{RLIMIT_NOFILE, lim.rlim_max, lim.rlim_max}});
  CHECK(inherited.limit == static_cast<long>(lim.rlim_max));
  CHECK(inherited.closed == 0);
  WARN("close-all under the parent's hard limit " << inherited.limit << ": " << inherited.elapsed_us
                                                  << " us");
}

// --- Launcher: the same child, started without waiting for its execve ---------------------

namespace {

// Reads the report of a listen_fds_probe launched with {"LISTEN_FDS=1", "LISTEN_PID=1"} and a
// non-blocking connection, waits for its exit, and checks the hygiene every instance gets.
void check_launched_probe(int report_fd, Launcher& launcher, const SpawnedProcess& child) {
  auto report = parse_report(read_all(report_fd));
  REQUIRE(report.complete);
  CHECK(wait_exit(child.pidfd.get()).code_or_signal == 0);
  CHECK(launcher.take_failure(child.pid) == std::nullopt);
  CHECK(launcher.starting() == 0);

  CHECK(report.pid == child.pid);
  CHECK(report.fds ==
        std::map<int, std::string>{{0, "block"}, {1, "block"}, {2, "block"}, {3, "nonblock"}});
  CHECK(report.nofile_soft == 1024);
  CHECK(report.nofile_hard == expected_hard());
  CHECK(report.sigblk == "0000000000000000");
  CHECK(report.sigign == "0000000000000000");
  CHECK(report.sid == report.pid);
  CHECK(report.pgid == report.pid);
  CHECK(report.tty == "0");
  CHECK(report.pdeathsig == 0);
  CHECK(report.cwd == "/tmp");
  CHECK(report.env ==
        std::vector<std::string>{"LISTEN_FDS=1", "LISTEN_PID=" + std::to_string(child.pid)});
}

}  // namespace

TEST_CASE("a launched child gets the same hygiene as a spawned one, and its own LISTEN_PID",
          "[activation][launcher]") {
  ParentStateGuard guard;
  make_parent_hostile();
  auto leaks = open_leaky_fds(300);
  auto [ours, theirs] = make_socketpair(SOCK_NONBLOCK);
  auto null = open_dev_null();

  Launcher launcher;
  auto child =
      launcher.launch(listen_fds_probe(null.get(), theirs.get(), {"LISTEN_FDS=1", "LISTEN_PID=1"}));
  REQUIRE(child);
  // The child's fd table was copied at the clone: closing ours at once takes nothing from it.
  theirs.reset();

  check_launched_probe(ours.get(), launcher, *child);
}

TEST_CASE("a launched child that fails before execve reports the stage once it has exited",
          "[activation][launcher]") {
  auto null = open_dev_null();
  Launcher launcher;
  auto plan_for = [&](std::string path, std::string dir) {
    SpawnPlan plan;
    plan.path = std::move(path);
    plan.fds = {{null.get(), 0}, {null.get(), 1}, {null.get(), 2}};
    plan.working_directory = std::move(dir);
    return plan;
  };
  auto missing = launcher.launch(plan_for("/nonexistent/usherd-test-binary", ""));
  auto no_dir = launcher.launch(plan_for("/bin/true", "/nonexistent/usherd-test-dir"));
  auto fine = launcher.launch(plan_for("/bin/true", "/"));
  // The launch itself succeeds: the child fails later, on its own.
  REQUIRE(missing);
  REQUIRE(no_dir);
  REQUIRE(fine);

  CHECK(wait_exit(missing->pidfd.get()).code_or_signal == 127);
  auto failure = launcher.take_failure(missing->pid);
  REQUIRE(failure);
  CHECK(failure->code == ENOENT);
  CHECK(failure->to_string().find("exec /nonexistent/usherd-test-binary") != std::string::npos);
  CHECK(launcher.take_failure(missing->pid) == std::nullopt);  // reported once

  CHECK(wait_exit(no_dir->pidfd.get()).code_or_signal == 127);
  failure = launcher.take_failure(no_dir->pid);
  REQUIRE(failure);
  CHECK(failure->code == ENOENT);
  CHECK(failure->to_string().find("chdir /nonexistent/usherd-test-dir") != std::string::npos);

  CHECK(wait_exit(fine->pidfd.get()).code_or_signal == 0);
  CHECK(launcher.take_failure(fine->pid) == std::nullopt);
  CHECK(launcher.starting() == 0);
  CHECK(no_zombie_children());
}

TEST_CASE("many children launched back to back all run, and their slots are reused",
          "[activation][launcher]") {
  auto null = open_dev_null();
  Launcher launcher;
  std::vector<std::pair<UniqueFd, pid_t>> children;
  std::vector<UniqueFd> outputs;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 25; ++i) {
      auto [out_read, out_write] = make_pipe();
      SpawnPlan plan;
      plan.path = "/bin/echo";
      plan.argv = {"echo", "child-" + std::to_string(round * 25 + i)};
      plan.fds = {{null.get(), 0}, {out_write.get(), 1}, {null.get(), 2}};
      auto child = launcher.launch(std::move(plan));
      REQUIRE(child);
      children.emplace_back(std::move(child->pidfd), child->pid);
      outputs.push_back(std::move(out_read));
    }
    // Every child of this round has exited (so it has left our memory) before the next round
    // launches: its slot is free again.
    for (std::size_t i = children.size() - 25; i < children.size(); ++i)
      CHECK(wait_exit(children[i].first.get()).code_or_signal == 0);
    CHECK(launcher.starting() == 0);
  }
  for (std::size_t i = 0; i < outputs.size(); ++i)
    CHECK(read_all(outputs[i].get()) == "child-" + std::to_string(i) + "\n");
  for (const auto& [pidfd, pid] : children) CHECK(launcher.take_failure(pid) == std::nullopt);
}

TEST_CASE("a launcher destroyed right after a launch leaves the child intact",
          "[activation][launcher]") {
  auto null = open_dev_null();
  for (int i = 0; i < 20; ++i) {
    auto [out_read, out_write] = make_pipe();
    Result<SpawnedProcess> child;
    {
      Launcher launcher;
      SpawnPlan plan;
      plan.path = "/bin/echo";
      plan.argv = {"echo", "intact"};
      plan.fds = {{null.get(), 0}, {out_write.get(), 1}, {null.get(), 2}};
      child = launcher.launch(std::move(plan));
      REQUIRE(child);
    }  // the slot's stack and plan are freed only once the child has left them
    out_write.reset();
    CHECK(read_all(out_read.get()) == "intact\n");
    auto status = wait_exit(child->pidfd.get());
    CHECK_FALSE(status.signaled);
    CHECK(status.code_or_signal == 0);
  }
}

TEST_CASE("beyond its limit of starting children a launcher refuses with EAGAIN, before cloning",
          "[activation][launcher]") {
  auto null = open_dev_null();
  Launcher launcher(0);
  SpawnPlan plan;
  plan.path = "/bin/true";
  plan.fds = {{null.get(), 0}, {null.get(), 1}, {null.get(), 2}};
  auto refused = launcher.launch(std::move(plan));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == EAGAIN);
  CHECK(no_zombie_children());
}

#include "supervisor/state_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/catch.h"

using usherd::supervisor::StateEntry;
using usherd::supervisor::StateFile;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/usherd-state-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

StateEntry entry(pid_t pid, std::uint64_t start, const std::string& name) {
  StateEntry e;
  e.pid = pid;
  e.start_time = start;
  e.started_unix_ms = 1700000000000;
  e.socket = "ssh.socket";
  e.name = name;
  e.peer = "127.0.0.1:4242";
  return e;
}

/// The live table of a file usherd wrote (a boot id of "", as the tests' StateFile has).
std::vector<StateEntry> read_live(const std::string& path) {
  auto live = StateFile::read(path, "");
  REQUIRE(live);
  return *live;
}

}  // namespace

TEST_CASE("state journal replays spawned, ready and ended events into the live table",
          "[supervisor][state]") {
  std::string dir = temp_dir();
  std::string path = dir + "/state";
  StateFile file;
  REQUIRE(file.open(path, {}));
  file.record(StateFile::Event::spawned, entry(100, 5, "ssh@1-a-b.service").view());
  file.record(StateFile::Event::spawned, entry(101, 6, "ssh@2-a-b.service").view());
  file.record(StateFile::Event::ready, entry(100, 5, "ssh@1-a-b.service").view());
  file.record(StateFile::Event::spawned, entry(102, 7, "ssh@3-a-b.service").view());
  file.record(StateFile::Event::ended, entry(101, 6, "ssh@2-a-b.service").view());
  // An end whose start time differs is another process that reused the pid: ignored.
  file.record(StateFile::Event::ended, entry(102, 99, "ssh@3-a-b.service").view());
  // Recorded events are buffered: nothing is on disk before flush().
  CHECK(read_live(path).empty());
  file.flush();

  auto live = read_live(path);
  REQUIRE(live.size() == 2);
  CHECK(live[0].pid == 100);
  CHECK(live[0].ready);
  CHECK(live[0].name == "ssh@1-a-b.service");
  CHECK(live[0].peer == "127.0.0.1:4242");
  CHECK(live[1].pid == 102);
  CHECK_FALSE(live[1].ready);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("state journal ignores a torn last line and garbage", "[supervisor][state]") {
  std::string dir = temp_dir();
  std::string path = dir + "/state";
  {
    std::ofstream out(path);
    out << usherd::supervisor::encode_state_line('+', entry(200, 1, "a@1.service"));
    out << "garbage line\n";
    out << "+\t201\t2\t0\t0\tssh.socket\tb@2.serv";  // torn: no newline, missing fields
  }
  auto live = read_live(path);
  REQUIRE(live.size() == 1);
  CHECK(live[0].pid == 200);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a missing state file reads as no instances", "[supervisor][state]") {
  CHECK(read_live("/nonexistent/usherd/state").empty());
}

TEST_CASE("state journal identifies a process by its pidfd inode where it has one",
          "[supervisor][state]") {
  StateEntry by_inode = entry(300, 0, "c@1.service");
  by_inode.pidfd_inode = 123456789;
  std::string line = usherd::supervisor::encode_state_line('+', by_inode);
  CHECK(line.find("\ti123456789\t") != std::string::npos);
  char op = 0;
  StateEntry back;
  REQUIRE(usherd::supervisor::decode_state_line(line.substr(0, line.size() - 1), op, back));
  CHECK(op == '+');
  CHECK(back.pidfd_inode == 123456789);
  CHECK(back.start_time == 0);

  std::string dir = temp_dir();
  std::string path = dir + "/state";
  StateFile file;
  REQUIRE(file.open(path, {}));
  file.record(StateFile::Event::spawned, by_inode.view());
  StateEntry reused = by_inode;
  reused.pidfd_inode = 987;  // the pid now names another process: its end is not this one's
  file.record(StateFile::Event::ended, reused.view());
  file.flush();
  auto live = read_live(path);
  REQUIRE(live.size() == 1);
  CHECK(live[0].pidfd_inode == 123456789);
  file.record(StateFile::Event::ended, by_inode.view());
  file.flush();
  CHECK(read_live(path).empty());
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a state.new planted as a symlink is replaced, never written through",
          "[supervisor][state]") {
  std::string dir = temp_dir();
  std::string victim = dir + "/victim";
  {
    std::ofstream out(victim);
    out << "root's file\n";
  }
  REQUIRE(::symlink(victim.c_str(), (dir + "/state.new").c_str()) == 0);
  StateFile file;
  REQUIRE(file.open(dir + "/state", {entry(400, 1, "d@1.service")}));
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "root's file\n");
  struct stat st {};
  REQUIRE(::lstat((dir + "/state").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK(read_live(dir + "/state").size() == 1);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a state file someone else could have written is not trusted", "[supervisor][state]") {
  std::string dir = temp_dir();
  std::string path = dir + "/state";
  StateFile file;
  REQUIRE(file.open(path, {entry(500, 1, "e@1.service")}));
  REQUIRE(::chmod(path.c_str(), 0622) == 0);  // writable by others
  auto writable = StateFile::read(path, "");
  REQUIRE_FALSE(writable);
  CHECK(writable.error().code == EPERM);
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  if (::geteuid() == 0) {
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);  // another user's
    CHECK_FALSE(StateFile::read(path, ""));
    REQUIRE(::chown(path.c_str(), 0, 0) == 0);
  }
  REQUIRE(::symlink(path.c_str(), (dir + "/link").c_str()) == 0);
  CHECK_FALSE(StateFile::read(dir + "/link", ""));  // a symlink is not followed
  CHECK(read_live(path).size() == 1);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a state file from another boot names no live process", "[supervisor][state]") {
  std::string dir = temp_dir();
  std::string path = dir + "/state";
  StateFile file;
  file.set_boot_id("11111111-2222-3333-4444-555555555555");
  REQUIRE(file.open(path, {entry(600, 1, "f@1.service")}));
  CHECK(StateFile::read(path, "11111111-2222-3333-4444-555555555555").value().size() == 1);
  auto other = StateFile::read(path, "99999999-2222-3333-4444-555555555555");
  REQUIRE_FALSE(other);
  CHECK(other.error().code == ESTALE);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("state lines carry the start on CLOCK_BOOTTIME, and the 8-field form is still read",
          "[supervisor][state]") {
  StateEntry e = entry(700, 3, "g@1.service");
  e.started_boot_ms = 123456;
  std::string line = usherd::supervisor::encode_state_line('+', e);
  CHECK(line.substr(line.size() - 9) == "\tb123456\n");
  char op = 0;
  StateEntry back;
  REQUIRE(usherd::supervisor::decode_state_line(line.substr(0, line.size() - 1), op, back));
  CHECK(back.started_boot_ms == 123456);
  std::string old = "+\t701\t3\t1700000000000\t1\tssh.socket\th@1.service\t127.0.0.1:1";
  REQUIRE(usherd::supervisor::decode_state_line(old, op, back));
  CHECK(back.pid == 701);
  CHECK(back.started_boot_ms == 0);
  CHECK(back.ready);
}

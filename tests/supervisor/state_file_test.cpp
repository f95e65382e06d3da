#include "supervisor/state_file.h"

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
  CHECK(StateFile::read(path).empty());
  file.flush();

  auto live = StateFile::read(path);
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
  auto live = StateFile::read(path);
  REQUIRE(live.size() == 1);
  CHECK(live[0].pid == 200);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a missing state file reads as no instances", "[supervisor][state]") {
  CHECK(StateFile::read("/nonexistent/usherd/state").empty());
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
  auto live = StateFile::read(path);
  REQUIRE(live.size() == 1);
  CHECK(live[0].pidfd_inode == 123456789);
  file.record(StateFile::Event::ended, by_inode.view());
  file.flush();
  CHECK(StateFile::read(path).empty());
  std::system(("rm -rf " + dir).c_str());
}

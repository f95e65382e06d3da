// Spawn plans from units: systemd's stdio rules as a table, the environment and credentials a
// plan carries, and the fds and variables each kind of start adds.
#include "supervisor/spawn_plan.h"

#include <algorithm>

#include "tests/catch.h"
#include "tests/supervisor/support.h"

using namespace usherd;
using namespace usherd::supervisor;
using units::StdInput;
using units::StdOutput;

namespace {

units::ServiceUnit service(std::string_view name, std::string_view text) {
  return test::service_unit(name, text);
}

// A directory with two users and their groups: no NSS in a table test.
Result<activation::Credentials> lookup(std::string_view user, std::string_view group,
                                       const std::vector<std::string>& groups) {
  activation::Credentials c;
  if (user == "alice" || user.empty()) {
    c = {1000, 1000, {1000}, "/home/alice", "/bin/bash", "alice"};
  } else if (user == "root") {
    c = {0, 0, {0}, "/root", "/bin/sh", "root"};
  } else {
    return fail("User=" + std::string(user) + ": no such user");
  }
  if (group == "staff") c.gid = 50;
  for (const auto& g : groups) c.groups.push_back(g == "adm" ? 4 : 99);
  return c;
}

PlanContext context() {
  return PlanContext{"/run/usherd/notify", lookup};
}

std::shared_ptr<ServicePlan> plan_of(std::string_view text, std::string_view name = "t@.service") {
  auto made = make_plan(service(name, text), context());
  INFO((made ? std::string() : made.error().message));
  REQUIRE(made);
  return *made;
}

bool has(const std::vector<std::string>& env, std::string_view entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

int fd_at(const activation::SpawnPlan& spawn, int target) {
  for (const auto& m : spawn.fds)
    if (m.target == target) return m.source;
  return -1;
}

}  // namespace

TEST_CASE("stdio follows systemd's inherit rules", "[supervisor][plan]") {
  constexpr auto J = OutputRoute::journal, S = OutputRoute::socket, N = OutputRoute::null;
  struct Row {
    StdInput in;
    StdOutput out, err;
    StdioRoute expected;
  };
  // systemd.exec(5): StandardOutput=inherit is the socket when input is the socket, else
  // the journal; StandardError=inherit is whatever stdout is.
  const Row rows[] = {
      {StdInput::null, StdOutput::inherit, StdOutput::inherit, {false, J, J}},
      {StdInput::socket, StdOutput::inherit, StdOutput::inherit, {true, S, S}},
      {StdInput::socket, StdOutput::inherit, StdOutput::journal, {true, S, J}},
      {StdInput::socket, StdOutput::inherit, StdOutput::null, {true, S, N}},
      {StdInput::socket, StdOutput::null, StdOutput::inherit, {true, N, N}},
      {StdInput::socket, StdOutput::journal, StdOutput::inherit, {true, J, J}},
      {StdInput::null, StdOutput::socket, StdOutput::inherit, {false, S, S}},
      {StdInput::null, StdOutput::null, StdOutput::journal, {false, N, J}},
      {StdInput::null, StdOutput::journal, StdOutput::socket, {false, J, S}},
      {StdInput::null, StdOutput::inherit, StdOutput::null, {false, J, N}},
  };
  for (const auto& row : rows) {
    INFO("row " << (&row - rows));
    CHECK(route_stdio(row.in, row.out, row.err) == row.expected);
  }
}

TEST_CASE("a plan carries the unit's environment, PATH first", "[supervisor][plan]") {
  auto plan = plan_of(
      "[Service]\nExecStart=/usr/sbin/sshd -i\nEnvironment=A=1 B=2 PATH=/opt/bin\n"
      "UnsetEnvironment=B\nType=notify\nRuntimeDirectory=sshd extra\n");
  const auto& env = plan->base.env;
  CHECK(env.front() == "PATH=/opt/bin");  // replaced in place
  CHECK(has(env, "A=1"));
  CHECK_FALSE(has(env, "B=2"));
  CHECK(has(env, "NOTIFY_SOCKET=/run/usherd/notify"));
  CHECK(has(env, "RUNTIME_DIRECTORY=/run/sshd:/run/extra"));
  CHECK(plan->base.argv == std::vector<std::string>{"/usr/sbin/sshd", "-i"});
  CHECK(plan->declares_readiness);
  CHECK_FALSE(plan->base.credentials);
}

TEST_CASE("User= sets the credentials and USER, LOGNAME, HOME, SHELL", "[supervisor][plan]") {
  auto plan = plan_of(
      "[Service]\nExecStart=/bin/cat\nExecStartPre=+/bin/prep\nExecStartPost=!/bin/post\n"
      "User=alice\nGroup=staff\nSupplementaryGroups=adm\nWorkingDirectory=~\n");
  REQUIRE(plan->base.credentials);
  CHECK(plan->base.credentials->uid == 1000);
  CHECK(plan->base.credentials->gid == 50);
  CHECK(has(plan->base.env, "USER=alice"));
  CHECK(has(plan->base.env, "LOGNAME=alice"));
  CHECK(has(plan->base.env, "HOME=/home/alice"));
  CHECK(has(plan->base.env, "SHELL=/bin/bash"));
  CHECK(plan->base.working_directory == "/home/alice");
  // '+' and '!' commands run without User=/Group=.
  REQUIRE(plan->pre.size() == 1);
  CHECK_FALSE(plan->pre[0].credentials);
  CHECK(plan->pre[0].working_directory == "/root");
  REQUIRE(plan->post.size() == 1);
  CHECK_FALSE(plan->post[0].credentials);
}

TEST_CASE("make_plan refuses with the reason", "[supervisor][plan]") {
  struct Row {
    const char* text;
    const char* message;
  };
  const Row rows[] = {
      {"[Service]\nExecStart=/bin/cat\nUser=mallory\n", "User=mallory: no such user"},
      {"[Service]\nExecStart=/bin/cat\nX-ReadyLog=(\n", "X-ReadyLog=: "},
  };
  for (const auto& row : rows) {
    INFO(row.text);
    auto made = make_plan(service("t@.service", row.text), context());
    REQUIRE_FALSE(made);
    CHECK(made.error().message.rfind(row.message, 0) == 0);
  }
  units::ServiceUnit none = service("t@.service", "[Service]\nExecStart=/bin/cat\n");
  none.exec_start.clear();
  auto made = make_plan(none, context());
  REQUIRE_FALSE(made);
  CHECK(made.error().message == "no ExecStart=");
}

TEST_CASE("an instantiated template takes the template's credentials, never NSS",
          "[supervisor][plan]") {
  auto tmpl = plan_of("[Service]\nExecStart=/bin/echo %i\nUser=alice\n");
  units::ServiceUnit same = service("t@.service", "[Service]\nExecStart=/bin/echo x\nUser=alice\n");
  int lookups = 0;
  PlanContext counting{"/n", [&](auto user, auto group, const auto& groups) {
                         ++lookups;
                         return lookup(user, group, groups);
                       }};
  auto made = make_plan(same, counting, tmpl.get());
  REQUIRE(made);
  CHECK(lookups == 0);
  CHECK((*made)->base.credentials->uid == 1000);
  CHECK(has((*made)->base.env, "HOME=/home/alice"));

  units::ServiceUnit other = same;
  other.user = "root";
  auto refused = make_plan(other, counting, tmpl.get());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("resolved once per template") != std::string::npos);
}

TEST_CASE("Type=oneshot runs every ExecStart= in order", "[supervisor][plan]") {
  auto plan =
      plan_of("[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=-/bin/b\n", "t.service");
  REQUIRE(plan->main_commands.size() == 2);
  CHECK(plan->main_commands[0].path == "/bin/a");
  CHECK(plan->main_commands[1].path == "/bin/b");
  CHECK(plan->main_ignore_failure == std::vector<bool>{false, true});
}

TEST_CASE("a connection goes on stdin or as LISTEN_FDS fd 3", "[supervisor][plan]") {
  const ConnectionFds fds{10, 11, 12};
  std::optional<std::pair<std::string, unsigned>> remote{{"192.0.2.7", 40000}};

  auto inetd = plan_of("[Service]\nExecStart=/usr/sbin/sshd -i\nStandardInput=socket\n");
  auto a = connection_spawn(*inetd, inetd->base, fds, remote, "");
  CHECK(fd_at(a, 0) == 10);
  CHECK(fd_at(a, 1) == 10);
  CHECK(fd_at(a, 2) == 10);
  CHECK(fd_at(a, 3) == -1);
  CHECK(has(a.env, "REMOTE_ADDR=192.0.2.7"));
  CHECK(has(a.env, "REMOTE_PORT=40000"));
  CHECK_FALSE(a.set_listen_pid);

  auto sd = plan_of("[Service]\nExecStart=/bin/srv\nStandardOutput=null\n");
  auto b = connection_spawn(*sd, sd->base, fds, std::nullopt, "web");
  CHECK(fd_at(b, 0) == 12);
  CHECK(fd_at(b, 1) == 12);
  CHECK(fd_at(b, 2) == 12);  // StandardError=inherit follows stdout to /dev/null
  CHECK(fd_at(b, 3) == 10);
  CHECK(has(b.env, "LISTEN_FDS=1"));
  CHECK(has(b.env, "LISTEN_FDNAMES=web"));
  CHECK(b.set_listen_pid);
  CHECK_FALSE(has(b.env, "REMOTE_PORT=40000"));
}

TEST_CASE("X-ReadyLog= reads stderr wherever the unit sends it", "[supervisor][plan]") {
  auto plan = plan_of(
      "[Service]\nExecStart=/usr/sbin/sshd -i -e\nStandardInput=socket\nStandardError=null\n"
      "X-ReadyLog=^Accepted \n");
  CHECK(plan->captures_output());
  auto s = connection_spawn(*plan, plan->base, {10, 11, 12}, std::nullopt, "");
  CHECK(fd_at(s, 1) == 10);
  CHECK(fd_at(s, 2) == 11);
}

TEST_CASE("an Accept=no service gets its listeners from fd 3, or one on stdin",
          "[supervisor][plan]") {
  auto plan = plan_of("[Service]\nExecStart=/bin/srv\n", "t.service");
  auto s = service_main_spawn(*plan, plan->base, {20, 21}, "t.socket", 30, 12);
  CHECK(fd_at(s, 3) == 20);
  CHECK(fd_at(s, 4) == 21);
  CHECK(fd_at(s, 0) == 12);
  CHECK(fd_at(s, 1) == 30);
  CHECK(fd_at(s, 2) == 30);
  CHECK(has(s.env, "LISTEN_FDS=2"));
  CHECK(has(s.env, "LISTEN_FDNAMES=t.socket:t.socket"));

  auto wait = plan_of("[Service]\nExecStart=/bin/tftpd\nStandardInput=socket\n", "u.service");
  auto w = service_main_spawn(*wait, wait->base, {20}, "u.socket", -1, 12);
  CHECK(fd_at(w, 0) == 20);
  CHECK(fd_at(w, 1) == 20);
  CHECK(fd_at(w, 2) == 20);
  CHECK(fd_at(w, 3) == -1);
  CHECK_FALSE(w.set_listen_pid);
}

TEST_CASE("ExecReload= and ExecStop= name the main process", "[supervisor][plan]") {
  auto plan = plan_of(
      "[Service]\nExecStart=/bin/srv\nExecReload=/bin/kill -HUP $MAINPID\nUser=alice\n"
      "ExecStop=+/bin/stop\n",
      "t.service");
  auto reload = service_commands(*plan, plan->unit.exec_reload, 4242);
  REQUIRE(reload);
  REQUIRE(reload->size() == 1);
  CHECK((*reload)[0].argv == std::vector<std::string>{"/bin/kill", "-HUP", "4242"});
  CHECK((*reload)[0].credentials);
  auto stop = service_commands(*plan, plan->unit.exec_stop, 4242);
  REQUIRE(stop);
  CHECK_FALSE((*stop)[0].credentials);
  auto c = command_spawn((*stop)[0], 12);
  CHECK(fd_at(c, 0) == 12);
  CHECK(fd_at(c, 2) == 12);
}

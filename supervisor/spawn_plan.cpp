#include "supervisor/spawn_plan.h"

#include "units/exec_command.h"

namespace usherd::supervisor {
namespace {

constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

void set_env(std::vector<std::string>& env, const std::string& assignment) {
  auto eq = assignment.find('=');
  std::string_view key(assignment.data(), eq == std::string::npos ? assignment.size() : eq + 1);
  for (auto& e : env) {
    if (std::string_view(e).substr(0, key.size()) == key) {
      e = assignment;
      return;
    }
  }
  env.push_back(assignment);
}

void unset_env(std::vector<std::string>& env, const std::string& name) {
  // UnsetEnvironment= takes NAME (remove any) or NAME=VALUE (remove that exact assignment).
  bool exact = name.find('=') != std::string::npos;
  std::erase_if(env, [&](const std::string& e) {
    if (exact) return e == name;
    return e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=';
  });
}

// systemd.exec(5): User= also sets $USER, $LOGNAME, $HOME and $SHELL.
void set_user_env(std::vector<std::string>& env, const activation::Credentials& creds) {
  set_env(env, "USER=" + creds.user);
  set_env(env, "LOGNAME=" + creds.user);
  set_env(env, "HOME=" + creds.home);
  set_env(env, "SHELL=" + creds.shell);
}

OutputRoute route_output(units::StdOutput output, OutputRoute inherited) {
  switch (output) {
    case units::StdOutput::inherit:
      return inherited;
    case units::StdOutput::null:
      return OutputRoute::null;
    case units::StdOutput::socket:
      return OutputRoute::socket;
    case units::StdOutput::journal:
      return OutputRoute::journal;
  }
  return inherited;
}

}  // namespace

StdioRoute route_stdio(units::StdInput input, units::StdOutput output, units::StdOutput error) {
  StdioRoute route;
  route.stdin_socket = input == units::StdInput::socket;
  route.out = route_output(output, route.stdin_socket ? OutputRoute::socket : OutputRoute::journal);
  route.err = route_output(error, route.out);
  return route;
}

Result<std::shared_ptr<ServicePlan>> make_plan(const units::ServiceUnit& unit,
                                               const PlanContext& context,
                                               const ServicePlan* resolved) {
  auto plan = std::make_shared<ServicePlan>();
  plan->unit = unit;
  if (unit.exec_start.empty()) return fail("no ExecStart=");
  CredentialLookup lookup = context.lookup ? context.lookup : activation::resolve_credentials;
  activation::SpawnPlan& base = plan->base;
  std::vector<std::string> env = {kDefaultPath};
  if (resolved) {
    // An instance of a template instantiated per connection: the template's credentials,
    // looked up once at load. NSS (passwd, group, and behind them LDAP or sssd) is never
    // asked on the connection path: a slow directory service is the incident usherd exists
    // for. A User= that only the connection could name (an instance specifier) has no
    // meaning for a connection and is refused.
    if (unit.user != resolved->unit.user || unit.group != resolved->unit.group ||
        unit.supplementary_groups != resolved->unit.supplementary_groups) {
      return fail(
          "User=, Group= or SupplementaryGroups= names the connection (an instance "
          "specifier): credentials are resolved once per template, not per connection");
    }
    base.credentials = resolved->user_credentials;
    if (unit.user && base.credentials) set_user_env(env, *base.credentials);
  } else if (unit.user || unit.group) {
    auto creds = lookup(unit.user.value_or(""), unit.group.value_or(""), unit.supplementary_groups);
    if (!creds) return fail(creds.error().to_string());
    if (unit.user) set_user_env(env, *creds);
    base.credentials = std::move(*creds);
  } else if (!unit.supplementary_groups.empty()) {
    auto creds = lookup("root", "", unit.supplementary_groups);
    if (!creds) return fail(creds.error().to_string());
    base.credentials = std::move(*creds);
  }
  if (unit.type == units::ServiceType::notify || unit.notify_access != units::NotifyAccess::none)
    set_env(env, "NOTIFY_SOCKET=" + context.notify_socket);
  if (!unit.runtime_directory.empty()) {
    std::string dirs;
    for (const auto& d : unit.runtime_directory) dirs += (dirs.empty() ? "/run/" : ":/run/") + d;
    set_env(env, "RUNTIME_DIRECTORY=" + dirs);
  }
  for (const auto& assignment : unit.environment) set_env(env, assignment);
  for (const auto& name : unit.unset_environment) unset_env(env, name);

  // User=/Group= apply to every command but those prefixed '+' (full privileges) or '!'
  // (credentials not applied), each judged by its own prefix.
  plan->user_credentials = base.credentials;
  const std::optional<activation::Credentials>& creds = plan->user_credentials;
  auto build = [&](const units::ExecCommand& cmd) -> Result<activation::SpawnPlan> {
    auto argv = units::expand_exec_argv(cmd, env);
    if (!argv) return fail(argv.error().to_string());
    activation::SpawnPlan out;
    out.path = cmd.path;
    out.argv = std::move(*argv);
    out.env = env;
    for (const auto& limit : unit.limits)
      out.rlimits.push_back(
          {limit.resource, static_cast<rlim_t>(limit.soft), static_cast<rlim_t>(limit.hard)});
    out.credentials = cmd.full_privileges || cmd.skip_credentials ? std::nullopt : creds;
    out.no_new_privileges = unit.no_new_privileges;
    out.working_directory = unit.working_directory.value_or("");
    out.working_directory_optional = unit.working_directory_missing_ok;
    if (out.working_directory == "~")
      out.working_directory = out.credentials ? out.credentials->home : std::string("/root");
    out.root_directory = unit.root_directory.value_or("");
    out.umask = unit.umask;
    out.nice = unit.nice;
    return out;
  };
  auto main = build(unit.exec_start.front());
  if (!main) return tl::unexpected(main.error());
  base = std::move(*main);
  auto build_list = [&](const std::vector<units::ExecCommand>& commands,
                        std::vector<activation::SpawnPlan>& plans,
                        std::vector<bool>& ignore) -> Result<void> {
    for (std::size_t i = 0; i < commands.size(); ++i) {
      if (&commands == &unit.exec_start && i == 0) {
        plans.push_back(base);
      } else {
        auto p = build(commands[i]);
        if (!p) return tl::unexpected(p.error());
        plans.push_back(std::move(*p));
      }
      ignore.push_back(commands[i].ignore_failure);
    }
    return {};
  };
  if (auto r = build_list(unit.exec_start_pre, plan->pre, plan->pre_ignore_failure); !r)
    return tl::unexpected(r.error());
  if (unit.type == units::ServiceType::oneshot) {
    if (auto r = build_list(unit.exec_start, plan->main_commands, plan->main_ignore_failure); !r)
      return tl::unexpected(r.error());
  }
  if (auto r = build_list(unit.exec_start_post, plan->post, plan->post_ignore_failure); !r)
    return tl::unexpected(r.error());

  plan->stdio = route_stdio(unit.standard_input, unit.standard_output, unit.standard_error);
  if (unit.ready_log && !resolved) {  // a connection's instance uses the template's matcher
    auto matcher = activation::ReadyLogMatcher::compile(*unit.ready_log);
    if (!matcher) return fail("X-ReadyLog=: " + matcher.error().to_string());
    plan->ready_log.emplace(std::move(*matcher));
  }
  plan->declares_readiness = unit.type == units::ServiceType::notify || plan->ready_log.has_value();
  plan->instance_specifiers = unit.uses_instance_specifiers;
  return plan;
}

activation::SpawnPlan connection_spawn(const ServicePlan& plan, activation::SpawnPlan spawn,
                                       const ConnectionFds& fds,
                                       std::optional<std::pair<std::string, unsigned>> remote,
                                       std::string_view fd_name) {
  if (remote) {
    spawn.env.push_back("REMOTE_ADDR=" + remote->first);
    spawn.env.push_back("REMOTE_PORT=" + std::to_string(remote->second));
  }
  auto fd_for = [&](OutputRoute route) {
    switch (route) {
      case OutputRoute::socket:
        return fds.connection;
      case OutputRoute::journal:
        return fds.capture;
      case OutputRoute::null:
        break;
    }
    return fds.dev_null;
  };
  spawn.fds.push_back({plan.stdio.stdin_socket ? fds.connection : fds.dev_null, 0});
  spawn.fds.push_back({fd_for(plan.stdio.out), 1});
  // X-ReadyLog= reads stderr, wherever the unit sends it otherwise.
  spawn.fds.push_back({plan.ready_log ? fds.capture : fd_for(plan.stdio.err), 2});
  // The connection is already blocking (accept.h): nothing to clear in the child.
  if (!plan.stdio.stdin_socket) {
    // sd_listen_fds(3): the connection on fd 3, LISTEN_FDS=1, LISTEN_PID set by the child.
    spawn.fds.push_back({fds.connection, 3});
    spawn.env.push_back("LISTEN_FDS=1");
    spawn.env.push_back("LISTEN_FDNAMES=" +
                        (fd_name.empty() ? std::string("connection") : std::string(fd_name)));
    spawn.set_listen_pid = true;
  }
  return spawn;
}

activation::SpawnPlan service_main_spawn(const ServicePlan& plan, activation::SpawnPlan spawn,
                                         const std::vector<int>& listeners,
                                         std::string_view fd_name, int capture, int dev_null) {
  std::string names;
  int target = 3;
  for (int fd : listeners) {
    spawn.fds.push_back({fd, target++});
    names += (names.empty() ? "" : ":") + std::string(fd_name);
  }
  bool captured = capture >= 0;
  int out_fd = plan.stdio.out == OutputRoute::journal && captured ? capture : dev_null;
  int err_fd =
      (plan.stdio.err == OutputRoute::journal || plan.ready_log) && captured ? capture : dev_null;
  if (plan.stdio.stdin_socket && listeners.size() == 1) {
    // inetd's "wait" mode: the one listening socket on stdin (and on stdout/stderr when
    // they inherit it), e.g. a datagram service.
    int listener = listeners.front();
    spawn.fds.clear();
    spawn.fds.push_back({listener, 0});
    spawn.fds.push_back({plan.stdio.out == OutputRoute::socket ? listener : out_fd, 1});
    spawn.fds.push_back({plan.stdio.err == OutputRoute::socket ? listener : err_fd, 2});
  } else {
    spawn.fds.push_back({dev_null, 0});
    spawn.fds.push_back({out_fd, 1});
    spawn.fds.push_back({err_fd, 2});
    spawn.env.push_back("LISTEN_FDS=" + std::to_string(listeners.size()));
    spawn.env.push_back("LISTEN_FDNAMES=" + names);
    spawn.set_listen_pid = true;
  }
  return spawn;
}

activation::SpawnPlan command_spawn(activation::SpawnPlan spawn, int dev_null) {
  spawn.fds.push_back({dev_null, 0});
  spawn.fds.push_back({dev_null, 1});
  spawn.fds.push_back({dev_null, 2});
  return spawn;
}

Result<std::vector<activation::SpawnPlan>> service_commands(
    const ServicePlan& plan, const std::vector<units::ExecCommand>& commands, pid_t main_pid) {
  std::vector<std::string> env = plan.base.env;
  env.push_back("MAINPID=" + std::to_string(main_pid));
  std::vector<activation::SpawnPlan> out;
  for (const auto& cmd : commands) {
    auto argv = units::expand_exec_argv(cmd, env);
    if (!argv) return fail("service=" + plan.unit.name + ": " + argv.error().to_string());
    activation::SpawnPlan spawn = plan.base;
    spawn.path = cmd.path;
    spawn.argv = std::move(*argv);
    spawn.env = env;
    spawn.credentials =
        cmd.full_privileges || cmd.skip_credentials ? std::nullopt : plan.user_credentials;
    out.push_back(std::move(spawn));
  }
  return out;
}

}  // namespace usherd::supervisor

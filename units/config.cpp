// Words and derived values of the typed configuration; see config.h.
#include "units/config.h"

namespace usherd::units {

std::string_view to_string(SocketType type) {
  switch (type) {
    case SocketType::stream:
      return "stream";
    case SocketType::datagram:
      return "datagram";
    case SocketType::seqpacket:
      return "seqpacket";
  }
  return "stream";
}

std::string ListenAddress::to_string() const {
  switch (family) {
    case unix_path:
      return path;
    case unix_abstract:
      return "@" + path;
    case inet:
      break;
  }
  if (host.empty()) return "*:" + std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool ListenAddress::same_address(const ListenAddress& other) const {
  return type == other.type && family == other.family && host == other.host && port == other.port &&
         path == other.path;
}

std::string_view to_string(ServiceType value) {
  switch (value) {
    case ServiceType::simple:
      return "simple";
    case ServiceType::exec:
      return "exec";
    case ServiceType::notify:
      return "notify";
    case ServiceType::oneshot:
      return "oneshot";
  }
  return "simple";
}

std::string_view to_string(StdInput value) {
  return value == StdInput::socket ? "socket" : "null";
}

std::string_view to_string(StdOutput value) {
  switch (value) {
    case StdOutput::inherit:
      return "inherit";
    case StdOutput::null:
      return "null";
    case StdOutput::socket:
      return "socket";
    case StdOutput::journal:
      return "journal";
  }
  return "inherit";
}

std::string_view to_string(NotifyAccess value) {
  switch (value) {
    case NotifyAccess::none:
      return "none";
    case NotifyAccess::main:
      return "main";
    case NotifyAccess::exec:
      return "exec";
    case NotifyAccess::all:
      return "all";
  }
  return "none";
}

std::string_view to_string(KillMode value) {
  switch (value) {
    case KillMode::control_group:
      return "control-group";
    case KillMode::mixed:
      return "mixed";
    case KillMode::process:
      return "process";
    case KillMode::none:
      return "none";
  }
  return "control-group";
}

std::string_view to_string(RestartPolicy value) {
  switch (value) {
    case RestartPolicy::no:
      return "no";
    case RestartPolicy::on_success:
      return "on-success";
    case RestartPolicy::on_failure:
      return "on-failure";
    case RestartPolicy::on_abnormal:
      return "on-abnormal";
    case RestartPolicy::on_watchdog:
      return "on-watchdog";
    case RestartPolicy::on_abort:
      return "on-abort";
    case RestartPolicy::always:
      return "always";
  }
  return "no";
}

StdOutput ServiceUnit::effective_standard_output() const {
  if (standard_output != StdOutput::inherit) return standard_output;
  return standard_input == StdInput::socket ? StdOutput::socket : StdOutput::journal;
}

StdOutput ServiceUnit::effective_standard_error() const {
  if (standard_error != StdOutput::inherit) return standard_error;
  return effective_standard_output();
}

namespace {

std::string_view file_name(std::string_view path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_sshd_program(std::string_view path) {
  std::string_view name = file_name(path);
  return name == "sshd" || name == "sshd-session";
}

}  // namespace

bool ServiceUnit::runs_sshd() const {
  if (exec_start.empty()) return false;
  const ExecCommand& command = exec_start.front();
  return is_sshd_program(command.path) ||
         (!command.argv.empty() && is_sshd_program(command.argv.front()));
}

policy::ExitStatusOutcomes ServiceUnit::effective_exit_status_outcomes() const {
  if (exit_status_outcomes) return *exit_status_outcomes;
  return runs_sshd() ? policy::ExitStatusOutcomes::openssh : policy::ExitStatusOutcomes::legacy;
}

}  // namespace usherd::units

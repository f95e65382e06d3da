// Readiness for an imported sshd -i; see sshd_readiness.h.
#include "importer/sshd_readiness.h"

#include <algorithm>

namespace usherd::importer {
namespace {

// sshd's log line for a completed authentication, as the example ssh@.service matches it.
constexpr const char* kAcceptedLine =
    "Accepted (publickey|password|keyboard-interactive/pam|hostbased|gssapi-with-mic|"
    "gssapi-keyex) for [^ ]+ from [0-9A-Fa-f.:]+(%[^ ]+)? port [0-9]+ ssh2";

std::string_view base_name(std::string_view path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool has_flag(const std::vector<std::string>& args, char flag) {
  // sshd's options are single letters and may be grouped ("-De"); an option taking a value
  // ("-f FILE") ends the group, and its value is the next word when the group ends with it.
  static constexpr std::string_view kWithValue = "CEbcfghkopu";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return false;
    if (a.size() < 2 || a[0] != '-') continue;
    for (std::size_t k = 1; k < a.size(); ++k) {
      if (a[k] == flag) return true;
      if (kWithValue.find(a[k]) != std::string_view::npos) {
        if (k + 1 == a.size()) ++i;  // the value is the next word
        break;
      }
    }
  }
  return false;
}

}  // namespace

bool is_sshd_per_connection(const ExecLine& exec) {
  std::string_view program = base_name(exec.path);
  return (program == "sshd" || base_name(exec.argv0.value_or("")) == "sshd") &&
         has_flag(exec.args, 'i');
}

void add_sshd_readiness(UnitPlan& plan) {
  // sshd -i exits 255 after every normal session (DESIGN "Real daemons").
  plan.exec.ignore_failure = true;
  if (!has_flag(plan.exec.args, 'e')) plan.exec.args.push_back("-e");
  plan.remove_service("StandardError");
  plan.add_service(
      "StandardError", "journal",
      "Readiness, added by the import so that usherd's startup budget (MaxStartups) sees\n"
      "authentication: sshd logs to stderr (-e), its log goes to usherd's log, and the\n"
      "connection stops counting as a startup when a log record begins with sshd's\n"
      "\"Accepted <method> for <user> ...\" line. Each sshd log message is one write(), so a\n"
      "client cannot make a record begin with text it smuggled in. This needs nothing outside\n"
      "these two units. On hostile networks prefer the PAM session notification (README,\n"
      "\"Readiness\"; examples/openssh-pam): it does not depend on sshd's log at all.");
  plan.add_service("X-ReadyLog", kAcceptedLine);
  if (!plan.has_service("RuntimeDirectory")) {
    plan.add_service("RuntimeDirectory", "sshd",
                     "sshd's privilege separation directory, shared by every instance.");
    plan.add_service("RuntimeDirectoryMode", "0755");
    plan.add_service("RuntimeDirectoryPreserve", "yes");
  }
  bool has_drop_message = std::any_of(plan.socket.begin(), plan.socket.end(),
                                      [](const Setting& s) { return s.key == "X-DropMessage"; });
  if (!has_drop_message)
    plan.add_socket("X-DropMessage", "Not allowed at this time\\r\\n",
                    "What sshd itself says when its MaxStartups refuses a connection.");
}

}  // namespace usherd::importer

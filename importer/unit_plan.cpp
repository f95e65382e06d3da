// Writing a UnitPlan as unit files, and proving them with the real parser; see unit_plan.h.
#include "importer/unit_plan.h"

#include <algorithm>

#include "units/environment.h"
#include "units/exec_command.h"
#include "units/unit_parser.h"

namespace usherd::importer {
namespace {

bool is_control(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// Characters that never need quoting in a command-line or environment word.
bool is_plain_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("/._-+=:,@").find(c) != std::string_view::npos;
}

const char* kHex = "0123456789abcdef";

// A word for ExecStart= or Environment= (both are split with quotes and C escapes resolved,
// after specifiers are expanded). dollar_escape doubles '$' for command lines, where "$VAR"
// and "${VAR}" would otherwise be expanded at spawn time; xinetd and launchd never expand.
std::string word(std::string_view text, bool dollar_escape) {
  bool plain = !text.empty() && std::all_of(text.begin(), text.end(), is_plain_word_char);
  if (plain) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (is_control(c)) {
      auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else if (c == '%') {
      out += "%%";
    } else if (c == '$' && dollar_escape) {
      out += "$$";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string comment_lines(std::string_view text) {
  std::string out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    out += line.empty() ? "#\n" : "# " + std::string(line) + "\n";
    start = end + 1;
  }
  return out;
}

std::string header(const UnitPlan& plan, const std::vector<Finding>& findings) {
  std::string out = comment_lines(printable(plan.origin));
  std::vector<std::string> dropped;
  for (const Finding& f : findings)
    if (f.severity == Severity::warning) dropped.push_back(printable(f.location_and_message()));
  if (dropped.empty()) {
    out += "# Everything was carried over.\n";
  } else {
    out += "# Not carried over as it was (each also reported as a warning):\n";
    for (const auto& line : dropped) out += "#   " + line + "\n";
  }
  return out;
}

std::string settings(const std::vector<Setting>& list) {
  std::string out;
  for (const Setting& s : list) {
    if (!s.comment.empty()) out += comment_lines(s.comment);
    out += s.key + "=" + s.value + "\n";
  }
  return out;
}

std::string exec_start(const ExecLine& exec) {
  std::string prefix = exec.ignore_failure ? "-" : "";
  if (exec.argv0) prefix += "@";
  // The executable is never $-expanded, so only '%' and quoting matter for it.
  std::string path = word(exec.path, false);
  std::string out = path.front() == '"' ? "\"" + prefix + path.substr(1) : prefix + path;
  if (exec.argv0) out += " " + word(*exec.argv0, true);
  for (const auto& a : exec.args) out += " " + word(a, true);
  return out;
}

bool has_problems(const std::vector<units::Diagnostic>& diagnostics, std::string& first) {
  for (const auto& d : diagnostics) {
    if (d.severity != units::Diagnostic::Severity::notice) {
      first = d.to_string();
      return true;
    }
  }
  return false;
}

}  // namespace

void UnitPlan::add_socket(std::string key, std::string value, std::string comment) {
  socket.push_back({std::move(key), std::move(value), std::move(comment)});
}

void UnitPlan::add_service(std::string key, std::string value, std::string comment) {
  service.push_back({std::move(key), std::move(value), std::move(comment)});
}

void UnitPlan::set_environment(std::string_view name, std::string_view value) {
  units::set_environment(environment, std::string(name) + "=" + std::string(value));
}

bool UnitPlan::has_service(std::string_view key) const {
  return std::any_of(service.begin(), service.end(),
                     [&](const Setting& s) { return s.key == key; });
}

void UnitPlan::remove_service(std::string_view key) {
  std::erase_if(service, [&](const Setting& s) { return s.key == key; });
}

std::string socket_unit_name(const UnitPlan& plan) {
  return plan.stem + ".socket";
}

std::string service_unit_name(const UnitPlan& plan) {
  return plan.stem + (plan.accept ? "@.service" : ".service");
}

std::optional<std::string> unit_stem(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ':' || c == '_' || c == '.' || c == '-';
    out += ok ? c : '_';
  }
  // A unit name is at most 255 characters, "@.service" included.
  if (out.empty() || out.size() > 240) return std::nullopt;
  if (std::all_of(out.begin(), out.end(), [](char c) { return c == '_' || c == '.'; }))
    return std::nullopt;
  return out;
}

Result<std::string> plain_value(std::string_view text) {
  if (text.empty()) return fail("empty value");
  if (std::any_of(text.begin(), text.end(), is_control))
    return fail("value holds a control character");
  if (text.front() == ' ' || text.back() == ' ' || text.back() == '\\')
    return fail("value starts or ends with a character a unit line cannot keep");
  std::string out;
  for (char c : text) {
    if (c == '%') out += '%';
    out += c;
  }
  return out;
}

std::string environment_word(std::string_view assignment) {
  return word(assignment, false);
}

Result<std::vector<UnitFile>> render_units(const UnitPlan& plan,
                                           const std::vector<Finding>& findings) {
  std::string head = header(plan, findings);
  auto description = plain_value(printable(plan.description));
  if (!description) return fail("Description: " + description.error().message);

  std::string socket_text =
      head + "[Unit]\nDescription=" + *description + "\n\n[Socket]\n" + settings(plan.socket);
  std::string service_text = head + "[Unit]\nDescription=" + *description + "\n\n[Service]\n";
  if (!plan.exec.comment.empty()) service_text += comment_lines(plan.exec.comment);
  service_text += "ExecStart=" + exec_start(plan.exec) + "\n";
  for (const auto& e : plan.environment)
    service_text += "Environment=" + environment_word(e) + "\n";
  service_text += settings(plan.service);

  // Prove the pair with the parser usherd itself loads units with.
  std::string socket_name = socket_unit_name(plan);
  std::string service_name = service_unit_name(plan);
  auto socket_unit_name = units::parse_unit_name(socket_name);
  auto service_unit_name = units::parse_unit_name(service_name);
  if (!socket_unit_name || !service_unit_name)
    return fail("'" + plan.stem + "' does not make a valid unit name");
  std::vector<units::Diagnostic> diagnostics;
  std::string problem;
  auto socket = units::parse_socket_text(*socket_unit_name, socket_name, socket_text, diagnostics);
  units::FileReader no_files = [](const std::string& path) -> Result<std::string> {
    return fail("no environment file expected: " + path);
  };
  auto service = units::parse_service_text(*service_unit_name, service_name, service_text, no_files,
                                           diagnostics);
  if (has_problems(diagnostics, problem) || !socket || !service)
    return fail("the generated units do not load cleanly: " + problem);
  if (socket->accept != plan.accept || socket->service != service_name)
    return fail("the generated socket does not name its service");
  if (service->exec_start.size() != 1) return fail("the generated ExecStart= is not one command");
  const units::ExecCommand& command = service->exec_start.front();
  std::vector<std::string> want_argv = {plan.exec.argv0.value_or(plan.exec.path)};
  want_argv.insert(want_argv.end(), plan.exec.args.begin(), plan.exec.args.end());
  auto argv = units::expand_exec_argv(command, service->environment);
  if (command.path != plan.exec.path || !argv || *argv != want_argv)
    return fail("the generated ExecStart= does not reproduce the command line");
  if (service->environment != plan.environment)
    return fail("the generated Environment= does not reproduce the environment");
  return std::vector<UnitFile>{{socket_name, std::move(socket_text)},
                               {service_name, std::move(service_text)}};
}

}  // namespace usherd::importer

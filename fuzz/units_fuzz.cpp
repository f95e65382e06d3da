// libFuzzer entry for units/: arbitrary bytes parsed as a socket unit, a service unit, a
// template service (and one instantiation of it) and usherd.conf, entirely in memory
// (EnvironmentFile= reads go to a reader that never touches the disk). Also expands ExecStart=
// argv against an environment taken from the same bytes. Any crash, sanitizer report or
// uncaught exception is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "units/daemon_config.h"
#include "units/exec_command.h"
#include "units/loader.h"
#include "units/unit_parser.h"

using namespace usherd::units;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Diagnostic> diagnostics;
  FileReader no_files = [](const std::string& path) -> usherd::Result<std::string> {
    if (path == "/fuzz/env") return std::string("A=1\nB='x y'\n");
    return usherd::fail("no files while fuzzing", 2);
  };

  static const UnitName socket_name = *parse_unit_name("fuzz.socket");
  static const UnitName service_name = *parse_unit_name("fuzz.service");
  static const UnitName template_name = *parse_unit_name("fuzz@.service");

  auto socket = parse_socket_text(socket_name, "fuzz.socket", text, diagnostics);
  if (socket) (void)check_summary(*socket);

  auto service = parse_service_text(service_name, "fuzz.service", text, no_files, diagnostics);
  if (service) {
    for (const auto& command : service->exec_start) {
      (void)expand_exec_argv(command, service->environment);
    }
  }

  auto tmpl = parse_service_text(template_name, "fuzz@.service", text, no_files, diagnostics);
  if (tmpl) {
    ServiceUnit instance = instantiate(*tmpl, "3-127.0.0.1:22-127.0.0.1:5000", diagnostics);
    (void)readiness_warning(instance);
  }

  (void)parse_daemon_config(text, "usherd.conf", diagnostics);
  for (const auto& d : diagnostics) (void)d.to_string();
  return 0;
}

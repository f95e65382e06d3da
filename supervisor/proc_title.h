// The process title (what ps and /proc/PID/cmdline show), set as sshd and systemd do: by
// rewriting the memory that held argv. The environment strings that follow argv are moved
// to the heap first so the title may use that space too; init() must run before anything
// keeps pointers into environ.
#pragma once

#include <string_view>

namespace usherd::supervisor {

class ProcTitle {
 public:
  /// Claims argv's memory for the title. Call once, early in main.
  static void init(int argc, char** argv);
  /// Replaces the title; text longer than the claimed area is cut.
  static void set(std::string_view title);
};

}  // namespace usherd::supervisor

// Diagnostic: one finding about the configuration, printed as systemd prints unit-file
// problems ("file:line: message").
//
// Parsing never logs (library code returns what it found); every finding becomes a Diagnostic
// that the supervisor logs and `usherd --check` prints. Severity carries systemd's meaning: a
// warning names a value that was ignored, an error names a unit (or usherd.conf) that was not
// loaded, a notice is informational (a unit skipped by its conditions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace usherd::units {

/// One finding about a unit file or usherd.conf.
struct Diagnostic {
  /// How serious the finding is.
  enum class Severity { notice, warning, error };

  Severity severity = Severity::warning;  ///< notice, warning or error.
  std::string file;                       ///< The file the finding is about.
  unsigned line = 0;                      ///< 1-based line; 0 = the whole file.
  std::string message;                    ///< One sentence, systemd's wording where it has one.

  /// "file:line: message", or "file: message" when line is 0.
  std::string to_string() const;
};

/// "notice", "warning" or "error".
std::string_view to_string(Diagnostic::Severity severity);

/// Collects diagnostics for one parse; small helpers keep call sites to one line.
class DiagnosticSink {
 public:
  /// Appends to out, which must outlive the sink.
  explicit DiagnosticSink(std::vector<Diagnostic>& out) : out_(out) {}

  /// Records a notice.
  void notice(const std::string& file, unsigned line, std::string message);
  /// Records a warning.
  void warning(const std::string& file, unsigned line, std::string message);
  /// Records an error.
  void error(const std::string& file, unsigned line, std::string message);
  /// Number of errors recorded through this sink.
  unsigned errors() const { return errors_; }

 private:
  std::vector<Diagnostic>& out_;
  unsigned errors_ = 0;
};

}  // namespace usherd::units

#include "units/diagnostic.h"

#include <utility>

namespace usherd::units {

std::string Diagnostic::to_string() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

std::string_view to_string(Diagnostic::Severity severity) {
  switch (severity) {
    case Diagnostic::Severity::notice:
      return "notice";
    case Diagnostic::Severity::warning:
      return "warning";
    case Diagnostic::Severity::error:
      return "error";
  }
  return "error";
}

void DiagnosticSink::notice(const std::string& file, unsigned line, std::string message) {
  out_.push_back({Diagnostic::Severity::notice, file, line, std::move(message)});
}

void DiagnosticSink::warning(const std::string& file, unsigned line, std::string message) {
  out_.push_back({Diagnostic::Severity::warning, file, line, std::move(message)});
}

void DiagnosticSink::error(const std::string& file, unsigned line, std::string message) {
  out_.push_back({Diagnostic::Severity::error, file, line, std::move(message)});
  ++errors_;
}

}  // namespace usherd::units

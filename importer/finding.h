// Finding: one thing an import has to say about its input, and the report of a whole import.
//
// Imports are never silently lossy: every attribute that is not carried over becomes a
// warning naming the file, the line and the service, and the same sentence is written as a
// comment at the top of the generated units. An error means the service (or the file) was
// not imported at all; a notice says something was skipped on purpose (a disabled service).
#pragma once

#include <string>
#include <vector>

namespace usherd::importer {

/// How serious a finding is.
enum class Severity { notice, warning, error };

/// "notice", "warning", "error".
std::string_view to_string(Severity severity);

/// One finding about an input file or one of its services.
struct Finding {
  Severity severity = Severity::warning;  ///< notice, warning or error.
  std::string file;                       ///< The input file.
  unsigned line = 0;                      ///< 1-based; 0 = the whole file.
  std::string subject;                    ///< "service NAME", "job LABEL"; empty: the file.
  std::string message;                    ///< One sentence, no trailing period.

  /// "file:line: warning: service NAME: message" (the line and the subject when known).
  std::string to_string() const;
  /// "file:line: message", as written in a generated unit's header.
  std::string location_and_message() const;
};

/// One generated unit file.
struct UnitFile {
  std::string name;  ///< "finger.socket", "finger@.service".
  std::string text;  ///< The whole file.
};

/// What became of one service (xinetd) or job (launchd).
enum class Outcome {
  imported,  ///< Units were generated (possibly with warnings).
  disabled,  ///< Skipped because it is disabled (and --include-disabled was not given).
  failed,    ///< Not importable; the errors say why.
};

/// One service or job of the input and what the import made of it.
struct Job {
  std::string name;     ///< Service name or Label.
  std::string subject;  ///< "service NAME" or "job LABEL", as findings name it.
  std::string file;     ///< Where it is defined.
  unsigned line = 0;    ///< Line of its definition.
  Outcome outcome = Outcome::failed;
  std::vector<UnitFile> units;    ///< Socket unit then service unit, when imported.
  std::vector<Finding> findings;  ///< Its warnings, notices and errors, in input order.
};

/// The result of importing a set of files.
struct Report {
  std::vector<Job> jobs;          ///< In input order.
  std::vector<Finding> findings;  ///< About files rather than services (unreadable, syntax).

  /// True when nothing failed: every job imported or skipped as disabled, no file error.
  bool ok() const;
  /// Every finding (file ones first, then each job's), in order.
  std::vector<Finding> all_findings() const;
};

/// text with control characters written as "\xNN": input files put text into messages, and a
/// control character must not reach a terminal or a unit file's comment.
std::string printable(std::string_view text);

/// Orders findings by line within each file, files in the order they first appear.
void sort_by_line(std::vector<Finding>& findings);

/// Options shared by both importers.
struct Options {
  /// Import services whose access rules cannot be expressed, dropping those rules (each is
  /// reported). Without it such a service fails: an access list must never silently open.
  bool allow_open = false;
  /// Import services marked disabled instead of skipping them.
  bool include_disabled = false;
};

}  // namespace usherd::importer

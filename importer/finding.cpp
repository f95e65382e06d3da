// Findings and reports; see finding.h.
#include "importer/finding.h"

#include <algorithm>

namespace usherd::importer {

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::notice:
      return "notice";
    case Severity::warning:
      return "warning";
    case Severity::error:
      return "error";
  }
  return "error";
}

std::string Finding::location_and_message() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  return printable(out + ": " + message);
}

std::string Finding::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": " + std::string(importer::to_string(severity)) + ": ";
  if (!subject.empty()) out += subject + ": ";
  return printable(out + message);
}

void sort_by_line(std::vector<Finding>& findings) {
  std::vector<std::string> files;
  for (const Finding& f : findings)
    if (std::find(files.begin(), files.end(), f.file) == files.end()) files.push_back(f.file);
  auto rank = [&](const Finding& f) {
    return std::pair(std::find(files.begin(), files.end(), f.file) - files.begin(), f.line);
  };
  std::stable_sort(findings.begin(), findings.end(),
                   [&](const Finding& a, const Finding& b) { return rank(a) < rank(b); });
}

bool Report::ok() const {
  bool file_error = std::any_of(findings.begin(), findings.end(),
                                [](const Finding& f) { return f.severity == Severity::error; });
  bool job_failed = std::any_of(jobs.begin(), jobs.end(),
                                [](const Job& j) { return j.outcome == Outcome::failed; });
  return !file_error && !job_failed;
}

std::vector<Finding> Report::all_findings() const {
  std::vector<Finding> out = findings;
  for (const Job& job : jobs) out.insert(out.end(), job.findings.begin(), job.findings.end());
  return out;
}

}  // namespace usherd::importer

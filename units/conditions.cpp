// Condition evaluation; see conditions.h.
#include "units/conditions.h"

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>

namespace usherd::units {
namespace {

constexpr std::array<std::string_view, 7> kSupported = {
    "PathExists",        "PathExistsGlob", "PathIsDirectory", "PathIsSymbolicLink",
    "DirectoryNotEmpty", "FileNotEmpty",   "FileIsExecutable"};

bool directory_not_empty(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return false;
  bool found = false;
  while (dirent* d = ::readdir(dir)) {
    std::string_view name = d->d_name;
    if (name != "." && name != "..") {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

bool test(const Condition& c) {
  const std::string& p = c.parameter;
  struct stat st {};
  if (c.type == "PathExists") return ::stat(p.c_str(), &st) == 0;
  if (c.type == "PathExistsGlob") {
    glob_t g{};
    int r = ::glob(p.c_str(), GLOB_NOSORT | GLOB_BRACE, nullptr, &g);
    ::globfree(&g);
    return r == 0;
  }
  if (c.type == "PathIsDirectory") return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (c.type == "PathIsSymbolicLink") return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
  if (c.type == "DirectoryNotEmpty") return directory_not_empty(p);
  if (c.type == "FileNotEmpty")
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
  if (c.type == "FileIsExecutable")
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
  return true;
}

}  // namespace

bool is_supported_condition(const std::string& type) {
  for (std::string_view s : kSupported) {
    if (s == type) return true;
  }
  return false;
}

ConditionResult check_conditions(const std::vector<Condition>& conditions, DiagnosticSink& sink) {
  ConditionResult result;
  for (bool asserts : {false, true}) {
    bool any_trigger = false;
    bool trigger_held = false;
    std::string first_trigger;
    bool holds = true;
    std::string reason;
    for (const Condition& c : conditions) {
      if (c.is_assert != asserts) continue;
      if (!is_supported_condition(c.type)) {
        sink.warning(c.file, c.line,
                     c.text.substr(0, c.text.find('=') + 1) +
                         " is not supported by usherd, assuming it holds.");
        continue;
      }
      bool ok = test(c) != c.negate;
      if (c.trigger) {
        any_trigger = true;
        trigger_held = trigger_held || ok;
        if (first_trigger.empty()) first_trigger = c.text;
      } else if (!ok && holds) {
        holds = false;
        reason = c.text;
      }
    }
    if (holds && any_trigger && !trigger_held) {
      holds = false;
      reason = "none of the triggering conditions holds (" + first_trigger + ", ...)";
    }
    if (!holds) {
      (asserts ? result.asserts_hold : result.conditions_hold) = false;
      if (result.reason.empty()) result.reason = reason;
    }
  }
  return result;
}

}  // namespace usherd::units

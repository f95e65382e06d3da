// PerSourcePenalties= parsing (servconf.c sPerSourcePenalties, OpenSSH 10.3) and formatting.
#include "policy/penalties.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <vector>

#include "policy/openssh_time.h"

namespace usherd::policy {

namespace {

std::string in_quotes(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (pos < text.size()) {
    if (is_space(text[pos])) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    while (end < text.size() && !is_space(text[end])) ++end;
    words.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// misc.c atoi_err(): strtonum(text, 0, INT_MAX), which reads what strtoll reads (an optional
// sign, decimal digits) and wants nothing after it.
std::optional<unsigned> parse_count(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const std::string s(text);
  if (s.find('\0') != std::string::npos) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0' || errno != 0) return std::nullopt;
  if (value < 0 || value > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<unsigned>(value);
}

// Seconds as sshd holds them (a double, unbounded) to what PenaltyBox counts in.
PenaltyDuration to_penalty(std::chrono::duration<double> seconds) {
  constexpr double kMaxSeconds = std::numeric_limits<int>::max();
  const double s = std::min(seconds.count(), kMaxSeconds);
  return PenaltyDuration(static_cast<PenaltyDuration::rep>(std::llround(s * 1e6)));
}

struct Keyword {
  std::string_view name;
  PenaltyDuration PenaltyConfig::*field;
};

constexpr Keyword kTimes[] = {
    {"crash", &PenaltyConfig::crash},
    {"authfail", &PenaltyConfig::authfail},
    {"invaliduser", &PenaltyConfig::invalid_user},
    {"noauth", &PenaltyConfig::noauth},
    {"grace-exceeded", &PenaltyConfig::grace_exceeded},
    {"refuseconnection", &PenaltyConfig::refuse_connection},
    {"max", &PenaltyConfig::max},
    {"min", &PenaltyConfig::min},
};

}  // namespace

std::string_view to_string(PenaltyKind kind) {
  switch (kind) {
    case PenaltyKind::crash:
      return "crash";
    case PenaltyKind::authfail:
      return "authfail";
    case PenaltyKind::noauth:
      return "noauth";
    case PenaltyKind::grace_exceeded:
      return "grace-exceeded";
    case PenaltyKind::invalid_user:
      return "invaliduser";
    case PenaltyKind::refuse_connection:
      return "refuseconnection";
  }
  return "unknown";
}

std::string_view to_string(PenaltyOverflow overflow) {
  return overflow == PenaltyOverflow::deny_all ? "deny-all" : "permissive";
}

ParseResult<PenaltyConfig> PenaltyConfig::parse(std::string_view text) {
  PenaltyConfig config;
  const auto words = split_words(text);
  // servconf.c keeps -1 for "not set yet": the first setting wins, later ones are read (and
  // must be valid) but change nothing.
  std::optional<bool> enabled;
  std::vector<std::string_view> set_times;
  bool sources4_set = false, sources6_set = false;
  std::optional<PenaltyOverflow> overflow4, overflow6;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string_view word = words[i];
    if (equals_ignoring_case(word, "yes") || equals_ignoring_case(word, "no")) {
      if (i + 1 != words.size()) {
        return parse_error(in_quotes(word) + " must appear alone in " + in_quotes(text));
      }
      if (!enabled) enabled = equals_ignoring_case(word, "yes");
      continue;
    }
    const auto colon = word.find(':');
    if (colon == std::string_view::npos) {
      return parse_error("unsupported keyword " + in_quotes(word));
    }
    const auto key = word.substr(0, colon);
    const auto value = word.substr(colon + 1);

    const Keyword* time = nullptr;
    for (const Keyword& k : kTimes) {
      if (k.name == key) time = &k;
    }
    if (time != nullptr) {
      auto seconds = parse_openssh_seconds(value);
      if (!seconds) return parse_error(std::string(key) + ": " + seconds.error());
      bool first = true;
      for (std::string_view seen : set_times) first &= seen != key;
      if (first) {
        set_times.push_back(time->name);
        config.*(time->field) = to_penalty(*seconds);
      }
    } else if (key == "max-sources4" || key == "max-sources6") {
      const auto n = parse_count(value);
      if (!n) {
        return parse_error(std::string(key) + ": expected a number, got " + in_quotes(value));
      }
      bool& was_set = key == "max-sources4" ? sources4_set : sources6_set;
      if (!was_set) (key == "max-sources4" ? config.max_sources4 : config.max_sources6) = *n;
      was_set = true;
    } else if (key == "overflow" || key == "overflow6") {
      PenaltyOverflow mode;
      if (value == "permissive") {
        mode = PenaltyOverflow::permissive;
      } else if (value == "deny-all") {
        mode = PenaltyOverflow::deny_all;
      } else {
        return parse_error(std::string(key) + ": expected permissive or deny-all, got " +
                           in_quotes(value));
      }
      auto& slot = key == "overflow" ? overflow4 : overflow6;
      if (!slot) slot = mode;
    } else {
      return parse_error("unsupported keyword " + in_quotes(word));
    }
    if (!enabled) enabled = true;  // any term enables penalties
  }
  config.enabled = enabled.value_or(true);
  config.overflow4 = overflow4.value_or(PenaltyOverflow::permissive);
  // servconf.c fill_default_server_options(): overflow6 defaults to overflow's setting.
  config.overflow6 = overflow6.value_or(config.overflow4);
  return config;
}

PenaltyDuration PenaltyConfig::duration_for(PenaltyKind kind) const {
  switch (kind) {
    case PenaltyKind::crash:
      return crash;
    case PenaltyKind::authfail:
      return authfail;
    case PenaltyKind::noauth:
      return noauth;
    case PenaltyKind::grace_exceeded:
      return grace_exceeded;
    case PenaltyKind::invalid_user:
      return invalid_user;
    case PenaltyKind::refuse_connection:
      return refuse_connection;
  }
  return PenaltyDuration(0);
}

std::string PenaltyConfig::to_string() const {
  if (!enabled) return "no";
  std::string text;
  auto add = [&text](std::string_view key, const std::string& value) {
    if (!text.empty()) text += ' ';
    text += key;
    text += ':';
    text += value;
  };
  add("crash", format_openssh_seconds(crash));
  add("authfail", format_openssh_seconds(authfail));
  add("noauth", format_openssh_seconds(noauth));
  add("grace-exceeded", format_openssh_seconds(grace_exceeded));
  add("invaliduser", format_openssh_seconds(invalid_user));
  add("refuseconnection", format_openssh_seconds(refuse_connection));
  add("max", format_openssh_seconds(max));
  add("min", format_openssh_seconds(min));
  add("max-sources4", std::to_string(max_sources4));
  add("max-sources6", std::to_string(max_sources6));
  add("overflow", std::string(policy::to_string(overflow4)));
  add("overflow6", std::string(policy::to_string(overflow6)));
  return text;
}

}  // namespace usherd::policy

// PerSourcePenalties= parsing (servconf.c sPerSourcePenalties) and formatting.
#include "policy/penalties.h"

#include <limits>
#include <vector>

#include "policy/decimal.h"
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
  for (const auto word : words) {
    if (word == "yes" || word == "no") {
      if (words.size() != 1) {
        return parse_error(in_quotes(word) + " must appear alone in " + in_quotes(text));
      }
      config.enabled = word == "yes";
      return config;
    }
    const auto colon = word.find(':');
    if (colon == std::string_view::npos) {
      return parse_error("unsupported keyword " + in_quotes(word));
    }
    const auto key = word.substr(0, colon);
    const auto value = word.substr(colon + 1);

    std::chrono::seconds* time = nullptr;
    if (key == "crash")
      time = &config.crash;
    else if (key == "authfail")
      time = &config.authfail;
    else if (key == "noauth")
      time = &config.noauth;
    else if (key == "grace-exceeded")
      time = &config.grace_exceeded;
    else if (key == "invaliduser")
      time = &config.invalid_user;
    else if (key == "refuseconnection")
      time = &config.refuse_connection;
    else if (key == "max")
      time = &config.max;
    else if (key == "min")
      time = &config.min;

    if (time != nullptr) {
      auto seconds = parse_openssh_time(value);
      if (!seconds) return parse_error(std::string(key) + ": " + seconds.error());
      *time = *seconds;
    } else if (key == "max-sources4" || key == "max-sources6") {
      const auto n = parse_decimal(value, std::numeric_limits<int>::max());
      if (!n) {
        return parse_error(std::string(key) + ": expected a number, got " + in_quotes(value));
      }
      (key == "max-sources4" ? config.max_sources4 : config.max_sources6) =
          static_cast<unsigned>(*n);
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
      (key == "overflow" ? config.overflow4 : config.overflow6) = mode;
    } else {
      return parse_error("unsupported keyword " + in_quotes(word));
    }
  }
  config.enabled = true;
  return config;
}

std::chrono::seconds PenaltyConfig::duration_for(PenaltyKind kind) const {
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
  return std::chrono::seconds(0);
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
  add("crash", format_openssh_time(crash));
  add("authfail", format_openssh_time(authfail));
  add("noauth", format_openssh_time(noauth));
  add("grace-exceeded", format_openssh_time(grace_exceeded));
  add("invaliduser", format_openssh_time(invalid_user));
  add("refuseconnection", format_openssh_time(refuse_connection));
  add("max", format_openssh_time(max));
  add("min", format_openssh_time(min));
  add("max-sources4", std::to_string(max_sources4));
  add("max-sources6", std::to_string(max_sources6));
  add("overflow", std::string(policy::to_string(overflow4)));
  add("overflow6", std::string(policy::to_string(overflow6)));
  return text;
}

}  // namespace usherd::policy

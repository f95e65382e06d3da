// Limit*= parsing; see resource_limit.h.
#include "units/resource_limit.h"

#include <sys/resource.h>

#include "units/values.h"

namespace usherd::units {
namespace {

struct LimitKey {
  std::string_view key;
  int resource;
};

constexpr LimitKey kLimitKeys[] = {
    {"LimitCPU", RLIMIT_CPU},           {"LimitFSIZE", RLIMIT_FSIZE},
    {"LimitDATA", RLIMIT_DATA},         {"LimitSTACK", RLIMIT_STACK},
    {"LimitCORE", RLIMIT_CORE},         {"LimitRSS", RLIMIT_RSS},
    {"LimitNOFILE", RLIMIT_NOFILE},     {"LimitAS", RLIMIT_AS},
    {"LimitNPROC", RLIMIT_NPROC},       {"LimitMEMLOCK", RLIMIT_MEMLOCK},
    {"LimitLOCKS", RLIMIT_LOCKS},       {"LimitSIGPENDING", RLIMIT_SIGPENDING},
    {"LimitMSGQUEUE", RLIMIT_MSGQUEUE}, {"LimitNICE", RLIMIT_NICE},
    {"LimitRTPRIO", RLIMIT_RTPRIO},     {"LimitRTTIME", RLIMIT_RTTIME},
};

Result<std::uint64_t> parse_one(int resource, std::string_view text) {
  if (text == "infinity") return static_cast<std::uint64_t>(RLIM_INFINITY);
  switch (resource) {
    case RLIMIT_FSIZE:
    case RLIMIT_DATA:
    case RLIMIT_STACK:
    case RLIMIT_CORE:
    case RLIMIT_RSS:
    case RLIMIT_AS:
    case RLIMIT_MEMLOCK:
    case RLIMIT_MSGQUEUE:
      return parse_size(text);
    case RLIMIT_CPU: {
      // Seconds, rounded up, as systemd's rlimit_parse_sec().
      auto d = parse_timespan(text, std::chrono::seconds(1));
      if (!d) return tl::unexpected(d.error());
      auto us = static_cast<std::uint64_t>(d->count());
      return (us + 999999) / 1000000;
    }
    case RLIMIT_RTTIME: {
      auto d = parse_timespan(text, std::chrono::microseconds(1));
      if (!d) return tl::unexpected(d.error());
      return static_cast<std::uint64_t>(d->count());
    }
    case RLIMIT_NICE: {
      if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        auto nice = parse_integer(text, -20, 19);
        if (!nice) return tl::unexpected(nice.error());
        return static_cast<std::uint64_t>(20 - *nice);
      }
      return parse_unsigned(text, 40);
    }
    default:
      return parse_unsigned(text, UINT64_MAX - 1);
  }
}

}  // namespace

std::optional<int> resource_for_key(std::string_view key) {
  for (const LimitKey& k : kLimitKeys) {
    if (k.key == key) return k.resource;
  }
  return std::nullopt;
}

Result<ResourceLimit> parse_resource_limit(int resource, std::string_view value) {
  ResourceLimit limit;
  limit.resource = resource;
  std::size_t colon = value.find(':');
  auto soft = parse_one(resource, value.substr(0, colon));
  if (!soft) return tl::unexpected(soft.error());
  limit.soft = *soft;
  limit.hard = *soft;
  if (colon != std::string_view::npos) {
    auto hard = parse_one(resource, value.substr(colon + 1));
    if (!hard) return tl::unexpected(hard.error());
    limit.hard = *hard;
    if (limit.soft > limit.hard) return fail("soft limit above hard limit");
  }
  return limit;
}

}  // namespace usherd::units

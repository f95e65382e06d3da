// usherd.conf parsing; see daemon_config.h. The value syntaxes are OpenSSH's where the key
// is OpenSSH's (MaxStartups=, PerSourcePenalties=, …), parsed by policy/.
#include "units/daemon_config.h"

#include <algorithm>

#include "policy/address.h"
#include "policy/max_startups.h"
#include "policy/penalties.h"
#include "units/listen_address.h"
#include "units/unit_file.h"
#include "units/values.h"

namespace usherd::units {
namespace {

// The longest MaxParkedWait=: a day is far beyond any client's patience, and keeps
// now + wait from overflowing the clock's range.
constexpr Duration kLongestParkedWait = std::chrono::hours(24);

// Puts a [Policy] setting back to its built-in default; false for a key it does not know.
bool reset_to_default(DaemonConfig& c, const std::string& key) {
  const DaemonConfig defaults;
  if (key == "MaxStartups") {
    c.max_startups = defaults.max_startups;
  } else if (key == "PerSourceMaxStartups") {
    c.per_source_max_startups = defaults.per_source_max_startups;
  } else if (key == "PerSourceNetBlockSize") {
    c.per_source_net_block_size = defaults.per_source_net_block_size;
  } else if (key == "StartupTimeoutSec") {
    c.startup_timeout = defaults.startup_timeout;
  } else if (key == "ExemptSources") {
    c.exempt_sources.clear();
  } else if (key == "ReservedStartups") {
    c.reserved_startups = defaults.reserved_startups;
  } else if (key == "PerSourcePenalties") {
    c.per_source_penalties = defaults.per_source_penalties;
  } else if (key == "PerSourcePenaltyExemptList") {
    c.per_source_penalty_exempt_list.clear();
  } else if (key == "WaitingRoom") {
    c.waiting_room.enabled = defaults.waiting_room.enabled;
  } else if (key == "MaxParked") {
    c.waiting_room.max_parked = defaults.waiting_room.max_parked;
  } else if (key == "PerSourceMaxParked") {
    c.waiting_room.per_source_max_parked = defaults.waiting_room.per_source_max_parked;
  } else if (key == "MaxParkedWait") {
    c.waiting_room.max_wait = defaults.waiting_room.max_wait;
  } else if (key == "ReclaimStalledSec") {
    c.stall.after = defaults.stall.after;
  } else if (key == "ReclaimStalledBytes") {
    c.stall.bytes = defaults.stall.bytes;
  } else {
    return false;
  }
  return true;
}

}  // namespace

DaemonConfigResult parse_daemon_config(std::string_view text, const std::string& path,
                                       std::vector<Diagnostic>& diagnostics) {
  DaemonConfigResult result;
  DaemonConfig& c = result.config;
  c.path = path;
  DiagnosticSink sink(diagnostics);
  std::size_t first_new = diagnostics.size();
  auto entries = parse_unit_text(text, path, {"Policy", "Metrics"}, diagnostics);
  auto reject = [&](const Entry& e, std::string_view reason) {
    sink.error(
        e.file, e.line,
        "Failed to parse " + e.key + "= value: " + e.value + " (" + std::string(reason) + ")");
    result.ok = false;
  };
  for (const Entry& e : entries) {
    const std::string& key = e.key;
    if (e.section == "Metrics") {
      if (key == "ListenStream") {
        if (e.value.empty()) {
          c.metrics_listen.reset();
          continue;
        }
        auto address = parse_listen_address(e.value, SocketType::stream);
        if (!address) {
          reject(e, address.error().message);
          continue;
        }
        c.metrics_listen = std::move(*address);
        continue;
      }
    } else if (e.value.empty() && reset_to_default(c, key)) {
      continue;  // systemd's rule: an empty assignment resets the setting
    } else if (key == "MaxStartups") {
      auto m = policy::MaxStartups::parse(e.value);
      if (!m) {
        reject(e, m.error());
        continue;
      }
      c.max_startups = *m;
      continue;
    } else if (key == "PerSourceMaxStartups") {
      auto m = policy::parse_per_source_max_startups(e.value);
      if (!m) {
        reject(e, m.error());
        continue;
      }
      c.per_source_max_startups = *m;
      continue;
    } else if (key == "PerSourceNetBlockSize") {
      auto b = policy::NetBlockSize::parse(e.value);
      if (!b) {
        reject(e, b.error());
        continue;
      }
      c.per_source_net_block_size = *b;
      continue;
    } else if (key == "StartupTimeoutSec") {
      auto d = parse_timespan(e.value);
      if (!d) {
        reject(e, d.error().message);
        continue;
      }
      c.startup_timeout = d->count() == 0 ? kInfiniteDuration : *d;
      continue;
    } else if (key == "ExemptSources" || key == "PerSourcePenaltyExemptList") {
      auto& list = key == "ExemptSources" ? c.exempt_sources : c.per_source_penalty_exempt_list;
      auto parsed = policy::parse_cidr_list(e.value);
      if (!parsed) {
        reject(e, parsed.error());
        continue;
      }
      list.insert(list.end(), parsed->begin(), parsed->end());
      continue;
    } else if (key == "ReservedStartups") {
      auto n = parse_unsigned(e.value, 1000000);
      if (!n) {
        reject(e, n.error().message);
        continue;
      }
      c.reserved_startups = static_cast<unsigned>(*n);
      continue;
    } else if (key == "WaitingRoom") {
      auto b = parse_boolean(e.value);
      if (!b) {
        reject(e, "expected yes or no");
        continue;
      }
      c.waiting_room.enabled = *b;
      continue;
    } else if (key == "MaxParked") {
      // MaxStartups='s syntax on the room's occupancy: N is a hard cap, start:rate:full adds
      // random early drop between start and full.
      auto m = policy::MaxStartups::parse(e.value);
      if (!m) {
        reject(e, m.error());
        continue;
      }
      c.waiting_room.max_parked = *m;
      continue;
    } else if (key == "PerSourceMaxParked") {
      auto m = policy::parse_per_source_max_startups(e.value);
      if (!m) {
        reject(e, m.error());
        continue;
      }
      c.waiting_room.per_source_max_parked = *m;
      continue;
    } else if (key == "MaxParkedWait") {
      auto d = parse_timespan(e.value);
      if (!d) {
        reject(e, d.error().message);
        continue;
      }
      // A parked client hears nothing until it starts: the wait must end, and within what a
      // client waits for a banner. WaitingRoom=no is the way to not wait at all.
      if (d->count() <= 0 || *d > kLongestParkedWait) {
        reject(e, "expected a time between 1us and 24h");
        continue;
      }
      c.waiting_room.max_wait = *d;
      continue;
    } else if (key == "ReclaimStalledSec") {
      auto d = parse_timespan(e.value);
      if (!d) {
        reject(e, d.error().message);
        continue;
      }
      // 0 (or infinity) turns reclaiming off; otherwise bounded like MaxParkedWait=.
      if (*d > kLongestParkedWait && *d != kInfiniteDuration) {
        reject(e, "expected 0 or a time up to 24h");
        continue;
      }
      c.stall.after = *d == kInfiniteDuration ? Duration::zero() : *d;
      continue;
    } else if (key == "ReclaimStalledBytes") {
      auto n = parse_unsigned(e.value, 1 << 20);
      if (!n) {
        reject(e, n.error().message);
        continue;
      }
      c.stall.bytes = *n;
      continue;
    } else if (key == "PerSourcePenalties") {
      auto p = policy::PenaltyConfig::parse(e.value);
      if (!p) {
        reject(e, p.error());
        continue;
      }
      c.per_source_penalties = *p;
      continue;
    }
    if (key.rfind("X-", 0) == 0) continue;
    sink.warning(e.file, e.line,
                 "Unknown key name '" + key + "' in section '" + e.section + "', ignoring.");
  }
  // Syntax findings were made first; list everything in line order.
  auto first = diagnostics.begin() + static_cast<std::ptrdiff_t>(first_new);
  std::stable_sort(first, diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
  return result;
}

}  // namespace usherd::units

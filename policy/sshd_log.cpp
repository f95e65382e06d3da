// sshd's listener wording and log rate limit; see sshd_log.h.
#include "policy/sshd_log.h"

#include <cstdio>

namespace usherd::policy {

namespace {

std::string address_text(const IpAddress& address) {
  return address.unmapped().to_string();
}

std::string_view family_word(const IpAddress& address) {
  return address.unmapped().is_v4() ? "ipv4" : "ipv6";
}

// addr_masklen_ntop(): the address as given, then "/bits".
std::string masklen_text(const IpAddress& peer, unsigned prefix_length) {
  return address_text(peer) + "/" + std::to_string(prefix_length);
}

std::string three_decimals(std::chrono::duration<double> seconds) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", seconds.count());
  return buffer;
}

}  // namespace

std::string_view sshd_penalty_reason(PenaltyKind kind) {
  switch (kind) {
    case PenaltyKind::crash:
      return "penalty: caused crash";
    case PenaltyKind::authfail:
      return "penalty: failed authentication";
    case PenaltyKind::noauth:
      return "penalty: connections without attempting authentication";
    case PenaltyKind::grace_exceeded:
      return "penalty: exceeded LoginGraceTime";
    case PenaltyKind::invalid_user:
      return "penalty: attempted authentication by invalid user";
    case PenaltyKind::refuse_connection:
      return "penalty: connection prohibited by RefuseConnection";
  }
  return "penalty";
}

std::optional<std::string> sshd_drop_reason(DropReason reason, std::optional<PenaltyKind> penalty,
                                            bool table_full) {
  switch (reason) {
    case DropReason::penalty:
      if (table_full) return std::string("too many penalised addresses");
      if (penalty) return std::string(sshd_penalty_reason(*penalty));
      return std::string("PerSourcePenalties");
    case DropReason::per_source_startups:
    case DropReason::startups_full:
    case DropReason::startups_early_drop:
    // sshd has no waiting room: each of these is a connection it would have dropped as
    // Maxstartups when it arrived, so log parsers keep counting them as such.
    case DropReason::queue_full:
    case DropReason::queue_early_drop:
    case DropReason::queue_timeout:
      return std::string("Maxstartups");
    case DropReason::acl:
    case DropReason::rate:
    case DropReason::max_connections:
    case DropReason::per_source_connections:
    case DropReason::peer_closed:  // sshd would have started a child that read EOF at once
    case DropReason::spawn_failed:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string format_sshd_drop(unsigned startups, const Endpoint& peer, const Endpoint& local,
                             std::string_view reason) {
  return "drop connection #" + std::to_string(startups) + " from [" + address_text(peer.address) +
         "]:" + std::to_string(peer.port) + " on [" + address_text(local.address) +
         "]:" + std::to_string(local.port) + " " + std::string(reason);
}

std::string format_sshd_drops_suppressed(std::string_view what, unsigned dropped) {
  return std::string(what) + " logging rate-limited: additional " + std::to_string(dropped) +
         " connections dropped";
}

std::string format_sshd_penalty(SshdPenaltyEvent event, const IpAddress& peer,
                                unsigned prefix_length, std::chrono::duration<double> seconds,
                                PenaltyKind kind) {
  const std::string block = masklen_text(peer, prefix_length);
  const std::string family(family_word(peer));
  const std::string reason(sshd_penalty_reason(kind));
  switch (event) {
    case SshdPenaltyEvent::new_active:
    case SshdPenaltyEvent::new_deferred:
      return "srclimit_penalise: " + family + ": new " + block + " " +
             (event == SshdPenaltyEvent::new_active ? "active" : "deferred") + " penalty of " +
             three_decimals(seconds) + " seconds for " + reason;
    case SshdPenaltyEvent::activating:
      return "srclimit_penalise: " + block + ": activating " + family + " penalty of " +
             three_decimals(seconds) + " seconds for " + reason;
    case SshdPenaltyEvent::table_full:
      return "srclimit_penalise: " + family + " penalty table full, cannot penalise " + block +
             " for " + reason;
  }
  return {};
}

SshdLogRateLimit::SshdLogRateLimit(unsigned threshold, unsigned max_accum, unsigned hysteresis,
                                   unsigned log_every)
    : threshold_(threshold),
      max_accum_(max_accum),
      hysteresis_(hysteresis),
      log_every_(log_every) {}

SshdLogRateLimit::Verdict SshdLogRateLimit::event(std::int64_t now) {
  // log.c log_ratelimit(), statement for statement.
  if (now < 0) return {};
  if (last_event_ <= 0) last_event_ = now;
  if (now > last_event_) {
    const auto decay = static_cast<std::uint64_t>(now - last_event_);
    accumulated_ = accumulated_ < decay ? 0 : accumulated_ - static_cast<unsigned>(decay);
  }
  if (++accumulated_ > max_accum_) accumulated_ = max_accum_;
  const std::int64_t previous_event = last_event_;
  last_event_ = now;

  if (accumulated_ < threshold_) {
    if (!active_) return {};
    bool inactive = false;
    if (hysteresis_start_ == 0) {
      // Active, but under the threshold: the hysteresis period starts (or had already run
      // out before this event).
      if (previous_event + hysteresis_ < now) {
        inactive = true;
      } else {
        hysteresis_start_ = now;
      }
    } else if (hysteresis_start_ + hysteresis_ < now) {
      inactive = true;
    }
    if (inactive) {
      Verdict verdict{false, suppressed_};
      active_ = false;
      last_log_ = 0;
      hysteresis_start_ = 0;
      suppressed_ = 0;
      return verdict;
    }
  } else if (!active_) {
    active_ = true;
    last_log_ = now;
    hysteresis_start_ = 0;
    suppressed_ = 1;
    return {true, 0};
  } else if (hysteresis_start_ != 0) {
    hysteresis_start_ = 0;
  }

  // Over the threshold or within the hysteresis: let one line through now and then.
  if (log_every_ > 0 && now >= last_log_ + log_every_) {
    last_log_ = now;
    Verdict verdict{false, suppressed_};
    suppressed_ = 0;
    return verdict;
  }
  ++suppressed_;
  return {true, 0};
}

}  // namespace usherd::policy

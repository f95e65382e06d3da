// PenaltyConfig: OpenSSH's PerSourcePenalties= (sshd_config(5), servconf.c), parsed as
// OpenSSH 10.3's sshd parses it.
//
// A source block that misbehaves (its connection crashed, timed out, failed or did not attempt
// authentication, named an invalid user, or was refused) earns a penalty of some seconds;
// penalties accumulate per block up to max:, and a block is refused while its accumulated
// penalty exceeds min:. The value is a space-separated list of keyword:value terms, or "yes"
// (enable with defaults) or "no" (disable). As in servconf.c:
//   - a time is OpenSSH's time format with fractional seconds ("0.5s", convtime_double());
//   - "yes"/"no" (any case) must be the last word ("crash:5s no" is accepted, and is enabled,
//     since a term before it already enabled penalties); "no crash:5s" is refused;
//   - the first occurrence of a keyword wins, as every sshd_config option does;
//   - any term enables penalties; unnamed fields take 10.3's defaults (crash 90s, authfail 5s,
//     invaliduser 5s, noauth 1s, grace-exceeded 10s, refuseconnection 10s, min 15s, max 600s,
//     65536 sources of each family, overflow permissive, overflow6 as overflow).
// The one difference is usherd.conf's: an empty value (systemd's empty assignment) resets to
// the defaults, where sshd_config has no empty form.
// Penalties are kept in microseconds (times beyond 2^31-1 seconds are held at that: beyond
// any max: that can matter). The exempt list (PerSourcePenaltyExemptList=) is a separate key.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "policy/parse_result.h"

namespace usherd::policy {

/// What a source did to earn a penalty (the PerSourcePenalties= keyword).
enum class PenaltyKind {
  crash,              ///< The instance crashed before it was ready.
  authfail,           ///< Authentication was attempted and failed.
  noauth,             ///< The instance ended before it was ready without attempting to.
  grace_exceeded,     ///< The instance hit its startup (login grace) timeout.
  invalid_user,       ///< Authentication named an unknown user.
  refuse_connection,  ///< A refusing rule (sshd's RefuseConnection) matched.
};

/// The keyword: "crash", "authfail", "noauth", "grace-exceeded", "invaliduser",
/// "refuseconnection".
std::string_view to_string(PenaltyKind kind);

/// What to do when the penalty table of a family is full.
enum class PenaltyOverflow {
  permissive,  ///< New sources go unpenalised.
  deny_all,    ///< Every source of that family is refused until entries expire.
};

/// "permissive" or "deny-all".
std::string_view to_string(PenaltyOverflow overflow);

/// A penalty's length: sub-second, as OpenSSH 10.3's double seconds.
using PenaltyDuration = std::chrono::microseconds;

/// PerSourcePenalties=, with OpenSSH's defaults.
struct PenaltyConfig {
  bool enabled = true;                                           ///< "no" clears it.
  PenaltyDuration crash = std::chrono::seconds(90);              ///< crash:
  PenaltyDuration authfail = std::chrono::seconds(5);            ///< authfail:
  PenaltyDuration noauth = std::chrono::seconds(1);              ///< noauth:
  PenaltyDuration grace_exceeded = std::chrono::seconds(10);     ///< grace-exceeded:
  PenaltyDuration invalid_user = std::chrono::seconds(5);        ///< invaliduser:
  PenaltyDuration refuse_connection = std::chrono::seconds(10);  ///< refuseconnection:
  PenaltyDuration max = std::chrono::seconds(600);          ///< max: cap of accumulated penalty.
  PenaltyDuration min = std::chrono::seconds(15);           ///< min: accumulation needed to refuse.
  unsigned max_sources4 = 65536;                            ///< max-sources4: tracked IPv4 blocks.
  unsigned max_sources6 = 65536;                            ///< max-sources6: tracked IPv6 blocks.
  PenaltyOverflow overflow4 = PenaltyOverflow::permissive;  ///< overflow:
  PenaltyOverflow overflow6 = PenaltyOverflow::permissive;  ///< overflow6 (default: overflow:)

  /// Parses the PerSourcePenalties= value as sshd does; empty text gives the defaults.
  static ParseResult<PenaltyConfig> parse(std::string_view text);
  /// The penalty configured for kind.
  PenaltyDuration duration_for(PenaltyKind kind) const;
  /// "no", or every term in the order above ("crash:1m30s authfail:5s noauth:0.5s ...").
  std::string to_string() const;

  /// Equal when every field is.
  friend bool operator==(const PenaltyConfig&, const PenaltyConfig&) = default;
};

}  // namespace usherd::policy

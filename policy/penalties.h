// PenaltyConfig: OpenSSH's PerSourcePenalties= (sshd_config(5), servconf.c), parsed as sshd
// parses it.
//
// A source block that misbehaves (its connection crashed, timed out, or left without
// authenticating) earns a penalty of some seconds; penalties accumulate per block up to max:,
// and a block is refused while its accumulated penalty exceeds min:. The value is a
// space-separated list of keyword:value terms (times in OpenSSH's time format), or "yes"
// (enable with defaults) or "no" (disable), which must appear alone. Any term implicitly
// enables penalties. Defaults are OpenSSH's (grace-exceeded 10s, as since 9.9).
// The exempt list (PerSourcePenaltyExemptList=) is a separate key: a vector<Cidr> parsed by
// parse_cidr_list() and kept beside this struct.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "policy/parse_result.h"

namespace usherd::policy {

/// What a source did to earn a penalty (the PerSourcePenalties= keyword).
enum class PenaltyKind {
  crash,              ///< The instance was killed by a signal before it was ready.
  authfail,           ///< Authentication failed (reported by a caller that can tell).
  noauth,             ///< The instance exited before it was ready.
  grace_exceeded,     ///< The instance hit its startup timeout.
  invalid_user,       ///< Authentication named an unknown user (caller-reported).
  refuse_connection,  ///< A refusing rule matched (caller-reported).
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

/// PerSourcePenalties=, with OpenSSH's defaults.
struct PenaltyConfig {
  bool enabled = true;                                      ///< "no" clears it.
  std::chrono::seconds crash{90};                           ///< crash:
  std::chrono::seconds authfail{5};                         ///< authfail:
  std::chrono::seconds noauth{1};                           ///< noauth:
  std::chrono::seconds grace_exceeded{10};                  ///< grace-exceeded:
  std::chrono::seconds invalid_user{5};                     ///< invaliduser:
  std::chrono::seconds refuse_connection{10};               ///< refuseconnection:
  std::chrono::seconds max{600};                            ///< max: cap of accumulated penalty.
  std::chrono::seconds min{15};                             ///< min: accumulation needed to refuse.
  unsigned max_sources4 = 65536;                            ///< max-sources4: tracked IPv4 blocks.
  unsigned max_sources6 = 65536;                            ///< max-sources6: tracked IPv6 blocks.
  PenaltyOverflow overflow4 = PenaltyOverflow::permissive;  ///< overflow:
  PenaltyOverflow overflow6 = PenaltyOverflow::permissive;  ///< overflow6:

  /// Parses the PerSourcePenalties= value; empty text gives the defaults. A repeated keyword
  /// takes its last value.
  static ParseResult<PenaltyConfig> parse(std::string_view text);
  /// The penalty configured for kind.
  std::chrono::seconds duration_for(PenaltyKind kind) const;
  /// "no", or every term in the order above ("crash:1m30s authfail:5s ...").
  std::string to_string() const;

  /// Equal when every field is.
  friend bool operator==(const PenaltyConfig&, const PenaltyConfig&) = default;
};

}  // namespace usherd::policy

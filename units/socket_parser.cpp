// [Socket] keys (systemd.socket(5)) and usherd's X- extensions, and the checks that decide
// whether a socket unit can be loaded (systemd's socket_verify()). The keys are one table
// (key_table.h), a row per key.
#include <algorithm>

#include "policy/address.h"
#include "policy/max_startups.h"
#include "units/key_kinds.h"
#include "units/key_table.h"
#include "units/listen_address.h"
#include "units/parse_context.h"
#include "units/unit_parser.h"
#include "units/values.h"

namespace usherd::units {

const std::vector<std::string_view> kSocketSections = {"Unit", "Socket", "Install"};

namespace {

// systemd.socket(5) keys usherd has no mechanism for: accepted with a warning, so a unit that
// relies on one is noticed.
constexpr std::string_view kUnsupportedSocketKeys[] = {"ListenFIFO",
                                                       "ListenSpecial",
                                                       "ListenNetlink",
                                                       "ListenMessageQueue",
                                                       "ListenUSBFunction",
                                                       "SocketProtocol",
                                                       "BindToDevice",
                                                       "Writable",
                                                       "FlushPending",
                                                       "KeepAliveTimeSec",
                                                       "KeepAliveIntervalSec",
                                                       "KeepAliveProbes",
                                                       "Priority",
                                                       "ReceiveBuffer",
                                                       "SendBuffer",
                                                       "IPTOS",
                                                       "IPTTL",
                                                       "Mark",
                                                       "PipeSize",
                                                       "Transparent",
                                                       "Broadcast",
                                                       "PassCredentials",
                                                       "PassSecurity",
                                                       "PassPacketInfo",
                                                       "Timestamping",
                                                       "TCPCongestion",
                                                       "Symlinks",
                                                       "SmackLabel",
                                                       "PollLimitIntervalSec"};

// Keys about the socket unit's own helper processes and slices, which usherd does not run.
constexpr std::string_view kSilentSocketKeys[] = {"ExecStartPre",
                                                  "ExecStartPost",
                                                  "ExecStopPre",
                                                  "ExecStopPost",
                                                  "TimeoutSec",
                                                  "Slice",
                                                  "PollLimitBurst",
                                                  "SELinuxContextFromNet",
                                                  "MessageQueueMaxMessages"};

// FileDescriptorName=: at most 255 printable ASCII characters, no ':' (sd_listen_fds(3)
// separates names with ':').
bool is_valid_fd_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x20 || c > 0x7e || c == ':') return false;
  }
  return true;
}

// What the [Socket] rows write: the unit, and what is resolved after the last entry.
struct SocketState {
  SocketUnit unit;
  std::optional<std::string> explicit_service;
  std::optional<std::string> fd_name;
};

// BindIPv6Only=: default, both, ipv6-only, or (as systemd also accepts) a boolean: yes means
// ipv6-only, no means both.
Result<BindIPv6Only> parse_bind_ipv6_only(std::string_view text) {
  if (text == "default") return BindIPv6Only::system_default;
  if (text == "both") return BindIPv6Only::both;
  if (text == "ipv6-only") return BindIPv6Only::ipv6_only;
  if (auto b = parse_boolean(text)) return *b ? BindIPv6Only::ipv6_only : BindIPv6Only::both;
  return fail("expected default, both or ipv6-only");
}

// Listen*=: one address each, in order (the LISTEN_FDS order); empty resets the list.
template <SocketType Type>
void listen(SocketState& state, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) return state.unit.listen.clear();
  auto value = context.expand(entry);
  if (!value) return;
  auto address = parse_listen_address(*value, Type);
  if (!address) return context.invalid(entry, address.error().message);
  address->text = *value;
  state.unit.listen.push_back(std::move(*address));
}

// Service=: a non-template service to activate instead of the socket's namesake.
void service(SocketState& state, const Entry& entry, ParseContext& context) {
  auto value = context.expand(entry);
  if (!value) return;
  auto name = parse_unit_name(*value);
  if (!name || name->suffix != "service") return context.invalid(entry, "not a service unit name");
  if (name->is_template())
    return context.invalid(entry, "a template cannot be started without an instance");
  state.explicit_service = name->name;
}

// FileDescriptorName=: resolved after the last entry (the default depends on Accept=).
void fd_name(SocketState& state, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) return state.fd_name.reset();
  auto value = context.expand(entry);
  if (!value) return;
  if (!is_valid_fd_name(*value))
    return context.invalid(entry, "at most 255 printable characters, no ':'");
  state.fd_name = std::move(*value);
}

using S = SocketUnit;
using Support = KeySupport;

// [Socket]: systemd.socket(5), then usherd's X- keys (usherd.socket(5)).
constexpr KeyRow<SocketState> kSocketRows[] = {
    {"ListenStream", Support::honoured, listen<SocketType::stream>},
    {"ListenDatagram", Support::honoured, listen<SocketType::datagram>},
    {"ListenSequentialPacket", Support::honoured, listen<SocketType::seqpacket>},
    {"Accept", Support::honoured, set<&S::accept, Bool>},
    {"Service", Support::honoured, service},
    {"MaxConnections", Support::honoured, set<&S::max_connections, Count<1>>},
    {"MaxConnectionsPerSource", Support::honoured, set<&S::max_connections_per_source, Count<0>>},
    {"Backlog", Support::honoured, set<&S::backlog, Count<0>>},
    {"BindIPv6Only", Support::honoured, set<&S::bind_ipv6_only, Value<parse_bind_ipv6_only>>},
    {"ReusePort", Support::honoured, set<&S::reuse_port, Bool>},
    {"FreeBind", Support::honoured, set<&S::free_bind, Bool>},
    {"KeepAlive", Support::honoured, set<&S::keep_alive, Bool>},
    {"NoDelay", Support::honoured, set<&S::no_delay, Bool>},
    {"DeferAcceptSec", Support::honoured, set<&S::defer_accept, Value<timespan>>},
    {"RemoveOnStop", Support::honoured, set<&S::remove_on_stop, Bool>},
    {"SocketUser", Support::honoured, set<&S::socket_user, OrReset<Text>>},
    {"SocketGroup", Support::honoured, set<&S::socket_group, OrReset<Text>>},
    {"SocketMode", Support::honoured, set<&S::socket_mode, Value<parse_mode>>},
    {"DirectoryMode", Support::honoured, set<&S::directory_mode, Value<parse_mode>>},
    {"FileDescriptorName", Support::honoured, fd_name},
    {"TriggerLimitIntervalSec", Support::honoured,
     set<&S::trigger_limit_interval, Value<timespan>>},
    {"TriggerLimitBurst", Support::honoured, set<&S::trigger_limit_burst, Count<0>>},
    {"IPAddressAllow", Support::honoured, set<&S::ip_address_allow, CidrList>},
    {"IPAddressDeny", Support::honoured, set<&S::ip_address_deny, CidrList>},
    {"X-MaxStartups", Support::extension,
     set<&S::max_startups, OrReset<Value<policy::MaxStartups::parse>>>},
    {"X-PerSourceMaxStartups", Support::extension,
     set<&S::per_source_max_startups, Value<policy::parse_per_source_max_startups>>},
    {"X-StartupTimeoutSec", Support::extension, set<&S::startup_timeout, OrReset<Value<timespan>>>},
    {"X-DropMessage", Support::extension, set<&S::drop_message, Value<c_unescape>>},
};

const SectionTable<SocketState>& socket_table() {
  // Built on first use: the sandboxing group lives in another file.
  static const KeyGroup groups[] = {{kSilentSocketKeys, Support::ignored},
                                    {kUnsupportedSocketKeys, Support::unsupported},
                                    sandboxing_group()};
  static const SectionTable<SocketState> table = {"Socket", kSocketRows, groups};
  return table;
}

}  // namespace

std::optional<SocketUnit> parse_socket_unit(const UnitName& name, const std::string& path,
                                            const std::vector<Entry>& entries,
                                            std::vector<Diagnostic>& diagnostics) {
  DiagnosticSink sink(diagnostics);
  ParseContext context{name, sink};
  SocketState state;
  SocketUnit& s = state.unit;
  s.name = name.name;
  s.path = path;
  for (const Entry& entry : entries) {
    if (entry.file != path && std::find(s.info.drop_ins.begin(), s.info.drop_ins.end(),
                                        entry.file) == s.info.drop_ins.end())
      s.info.drop_ins.push_back(entry.file);
    if (entry.section == "Socket") {
      if (!apply_key(socket_table(), state, entry, context)) context.unknown_key(entry);
    } else if (!apply_unit_entry(s.info, entry, context)) {
      context.unknown_key(entry);
    }
  }

  // systemd's socket_verify(): a socket that cannot work is refused, not half-loaded.
  if (s.listen.empty()) {
    sink.error(path, 0,
               "Unit has no Listen setting (ListenStream=, ListenDatagram=, "
               "ListenSequentialPacket=). Refusing.");
    return std::nullopt;
  }
  if (s.accept) {
    bool non_accepting = std::any_of(s.listen.begin(), s.listen.end(), [](const ListenAddress& a) {
      return a.type == SocketType::datagram;
    });
    if (non_accepting) {
      sink.error(path, 0,
                 "Unit configured for accepting sockets, but sockets are non-accepting. Refusing.");
      return std::nullopt;
    }
    if (state.explicit_service) {
      sink.error(path, 0,
                 "Explicit service configuration for accepting socket units not supported. "
                 "Refusing.");
      return std::nullopt;
    }
  }
  if (name.is_template()) {
    sink.error(path, 0, "Template socket units cannot be started without an instance. Refusing.");
    return std::nullopt;
  }
  if (state.explicit_service) {
    s.service = *state.explicit_service;
  } else {
    std::string stem = name.name.substr(0, name.name.size() - name.suffix.size() - 1);
    s.service = s.accept ? name.prefix + "@.service" : stem + ".service";
  }
  s.file_descriptor_name = state.fd_name ? *state.fd_name : (s.accept ? "connection" : name.name);
  return std::move(s);
}

std::optional<SocketUnit> parse_socket_text(const UnitName& name, const std::string& path,
                                            std::string_view text,
                                            std::vector<Diagnostic>& diagnostics) {
  auto entries = parse_unit_text(text, path, kSocketSections, diagnostics);
  return parse_socket_unit(name, path, entries, diagnostics);
}

std::vector<KnownKey> known_socket_keys() {
  std::vector<KnownKey> keys;
  list_unit_keys(keys);
  list_keys(socket_table(), keys);
  return keys;
}

}  // namespace usherd::units

// [Socket] keys (systemd.socket(5)) and usherd's X- extensions, and the checks that decide
// whether a socket unit can be loaded (systemd's socket_verify()).
#include <algorithm>
#include <array>

#include "policy/address.h"
#include "policy/max_startups.h"
#include "units/listen_address.h"
#include "units/parse_context.h"
#include "units/unit_parser.h"
#include "units/values.h"

namespace usherd::units {

const std::vector<std::string_view> kSocketSections = {"Unit", "Socket", "Install"};

namespace {

// systemd.socket(5) keys usherd has no mechanism for: accepted with a warning, so a unit that
// relies on one is noticed.
constexpr std::array<std::string_view, 30> kUnsupportedSocketKeys = {"ListenFIFO",
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
                                                                     "DeferAcceptSec",
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
constexpr std::array<std::string_view, 9> kSilentSocketKeys = {"ExecStartPre",
                                                               "ExecStartPost",
                                                               "ExecStopPre",
                                                               "ExecStopPost",
                                                               "TimeoutSec",
                                                               "Slice",
                                                               "PollLimitBurst",
                                                               "SELinuxContextFromNet",
                                                               "MessageQueueMaxMessages"};

bool in(const auto& table, std::string_view key) {
  return std::find(table.begin(), table.end(), key) != table.end();
}

// FileDescriptorName=: at most 255 printable ASCII characters, no ':' (sd_listen_fds(3)
// separates names with ':').
bool is_valid_fd_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x20 || c > 0x7e || c == ':') return false;
  }
  return true;
}

std::optional<unsigned> parse_count(const Entry& entry, ParseContext& context, unsigned min = 0) {
  auto value = parse_unsigned(entry.value, UINT32_MAX);
  if (!value || *value < min) {
    context.invalid(entry,
                    value ? "must be at least " + std::to_string(min) : value.error().message);
    return std::nullopt;
  }
  return static_cast<unsigned>(*value);
}

void apply_cidr_list(std::vector<policy::Cidr>& list, const Entry& entry, ParseContext& context) {
  if (entry.value.empty()) {
    list.clear();
    return;
  }
  auto parsed = policy::parse_cidr_list(entry.value);
  if (!parsed) {
    context.invalid(entry, parsed.error());
    return;
  }
  list.insert(list.end(), parsed->begin(), parsed->end());
}

struct SocketState {
  SocketUnit socket;
  std::optional<std::string> explicit_service;
  std::optional<std::string> fd_name;
};

void apply_socket_entry(SocketState& state, const Entry& entry, ParseContext& context) {
  SocketUnit& s = state.socket;
  const std::string& key = entry.key;
  auto listen = [&](SocketType type) {
    if (entry.value.empty()) {
      s.listen.clear();
      return;
    }
    auto value = context.expand(entry);
    if (!value) return;
    auto address = parse_listen_address(*value, type);
    if (!address) {
      context.invalid(entry, address.error().message);
      return;
    }
    address->text = *value;
    s.listen.push_back(std::move(*address));
  };
  auto boolean = [&](bool& field) {
    if (auto b = context.boolean(entry)) field = *b;
  };
  auto mode = [&](mode_t& field) {
    auto m = parse_mode(entry.value);
    if (!m) {
      context.invalid(entry, m.error().message);
      return;
    }
    field = *m;
  };

  if (key == "ListenStream") return listen(SocketType::stream);
  if (key == "ListenDatagram") return listen(SocketType::datagram);
  if (key == "ListenSequentialPacket") return listen(SocketType::seqpacket);
  if (key == "Accept") return boolean(s.accept);
  if (key == "Service") {
    auto value = context.expand(entry);
    if (!value) return;
    auto name = parse_unit_name(*value);
    if (!name || name->suffix != "service") {
      context.invalid(entry, "not a service unit name");
      return;
    }
    if (name->is_template()) {
      context.invalid(entry, "a template cannot be started without an instance");
      return;
    }
    state.explicit_service = name->name;
    return;
  }
  if (key == "MaxConnections") {
    if (auto n = parse_count(entry, context, 1)) s.max_connections = *n;
    return;
  }
  if (key == "MaxConnectionsPerSource") {
    if (auto n = parse_count(entry, context)) s.max_connections_per_source = *n;
    return;
  }
  if (key == "Backlog") {
    if (auto n = parse_count(entry, context)) s.backlog = *n;
    return;
  }
  if (key == "BindIPv6Only") {
    if (entry.value == "default") {
      s.bind_ipv6_only = BindIPv6Only::system_default;
    } else if (entry.value == "both") {
      s.bind_ipv6_only = BindIPv6Only::both;
    } else if (entry.value == "ipv6-only") {
      s.bind_ipv6_only = BindIPv6Only::ipv6_only;
    } else if (auto b = parse_boolean(entry.value)) {
      // systemd accepts a boolean too: yes means ipv6-only, no means both.
      s.bind_ipv6_only = *b ? BindIPv6Only::ipv6_only : BindIPv6Only::both;
    } else {
      context.invalid(entry, "expected default, both or ipv6-only");
    }
    return;
  }
  if (key == "ReusePort") return boolean(s.reuse_port);
  if (key == "FreeBind") return boolean(s.free_bind);
  if (key == "KeepAlive") return boolean(s.keep_alive);
  if (key == "NoDelay") return boolean(s.no_delay);
  if (key == "RemoveOnStop") return boolean(s.remove_on_stop);
  if (key == "SocketUser" || key == "SocketGroup") {
    auto& field = key == "SocketUser" ? s.socket_user : s.socket_group;
    if (entry.value.empty()) {
      field.reset();
      return;
    }
    if (auto value = context.expand(entry)) field = std::move(*value);
    return;
  }
  if (key == "SocketMode") return mode(s.socket_mode);
  if (key == "DirectoryMode") return mode(s.directory_mode);
  if (key == "FileDescriptorName") {
    if (entry.value.empty()) {
      state.fd_name.reset();
      return;
    }
    auto value = context.expand(entry);
    if (!value) return;
    if (!is_valid_fd_name(*value)) {
      context.invalid(entry, "at most 255 printable characters, no ':'");
      return;
    }
    state.fd_name = std::move(*value);
    return;
  }
  if (key == "TriggerLimitIntervalSec") {
    auto d = parse_timespan(entry.value);
    if (!d) return context.invalid(entry, d.error().message);
    s.trigger_limit_interval = *d;
    return;
  }
  if (key == "TriggerLimitBurst") {
    if (auto n = parse_count(entry, context)) s.trigger_limit_burst = *n;
    return;
  }
  if (key == "IPAddressAllow") return apply_cidr_list(s.ip_address_allow, entry, context);
  if (key == "IPAddressDeny") return apply_cidr_list(s.ip_address_deny, entry, context);
  if (key == "X-MaxStartups") {
    if (entry.value.empty()) {
      s.max_startups.reset();
      return;
    }
    auto m = policy::MaxStartups::parse(entry.value);
    if (!m) return context.invalid(entry, m.error());
    s.max_startups = *m;
    return;
  }
  if (key == "X-PerSourceMaxStartups") {
    auto m = policy::parse_per_source_max_startups(entry.value);
    if (!m) return context.invalid(entry, m.error());
    s.per_source_max_startups = *m;
    return;
  }
  if (key == "X-StartupTimeoutSec") {
    if (entry.value.empty()) {
      s.startup_timeout.reset();
      return;
    }
    auto d = parse_timespan(entry.value);
    if (!d) return context.invalid(entry, d.error().message);
    s.startup_timeout = *d;
    return;
  }
  if (key == "X-DropMessage") {
    auto text = c_unescape(entry.value);
    if (!text) return context.invalid(entry, text.error().message);
    s.drop_message = std::move(*text);
    return;
  }
  if (in(kSilentSocketKeys, key)) return;
  if (in(kUnsupportedSocketKeys, key)) {
    context.sink.warning(entry.file, entry.line, key + "= is not supported by usherd, ignoring.");
    return;
  }
  if (is_sandboxing_key(key)) return context.not_enforced(entry);
  context.unknown_key(entry);
}

}  // namespace

std::optional<SocketUnit> parse_socket_unit(const UnitName& name, const std::string& path,
                                            const std::vector<Entry>& entries,
                                            std::vector<Diagnostic>& diagnostics) {
  DiagnosticSink sink(diagnostics);
  ParseContext context{name, sink};
  SocketState state;
  SocketUnit& s = state.socket;
  s.name = name.name;
  s.path = path;
  for (const Entry& entry : entries) {
    if (entry.file != path && std::find(s.info.drop_ins.begin(), s.info.drop_ins.end(),
                                        entry.file) == s.info.drop_ins.end())
      s.info.drop_ins.push_back(entry.file);
    if (entry.section == "Socket") {
      apply_socket_entry(state, entry, context);
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

}  // namespace usherd::units

// The typed configuration that unit files and usherd.conf produce.
//
// Plain value types, filled by the parsers in this folder and read by the supervisor. Every
// field has systemd's (or OpenSSH's) default; std::optional marks settings whose absence
// means something different from any value (no Backlog=: as large as the kernel allows).
// Names are kept as names: User=, Group=, SocketUser= are resolved elsewhere, at load time.
// ExecCommand argv keeps "$VAR" words unexpanded; expand_exec_argv() (exec_command.h)
// applies the environment when an instance is spawned.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/address.h"
#include "policy/admission_config.h"
#include "policy/exit_outcomes.h"
#include "policy/max_startups.h"
#include "policy/penalties.h"
#include "units/unit_file.h"
#include "units/values.h"

namespace usherd::units {

/// The kind of socket a Listen*= line asks for.
enum class SocketType { stream, datagram, seqpacket };

/// "stream", "datagram", "seqpacket".
std::string_view to_string(SocketType type);

/// One ListenStream=/ListenDatagram=/ListenSequentialPacket= address.
struct ListenAddress {
  /// Where the socket lives.
  enum Family { inet, unix_path, unix_abstract };

  SocketType type = SocketType::stream;  ///< stream, datagram or seqpacket.
  Family family = inet;                  ///< inet, unix_path or unix_abstract.
  std::string host;  ///< Numeric address, no brackets; empty = any (dual-stack per BindIPv6Only=).
  std::uint16_t port = 0;  ///< Port for inet (0 = let the kernel choose).
  std::string path;        ///< Socket path, or abstract name without '@'.
  std::string text;        ///< The value as written.

  /// "127.0.0.1:22", "[::1]:22", "*:22" (any), "/run/x.sock", "@name".
  std::string to_string() const;
  /// Same address and type (text aside).
  bool same_address(const ListenAddress& other) const;
};

/// BindIPv6Only=.
enum class BindIPv6Only { system_default, both, ipv6_only };

/// One command line of ExecStart= and friends.
struct ExecCommand {
  std::string path;               ///< The executable as written (absolute, or a bare name).
  std::vector<std::string> argv;  ///< argv[0] first (after '@' handling); "$VAR" unexpanded.
  bool ignore_failure = false;    ///< '-': a failing exit status is not a failure.
  bool no_expand = false;         ///< ':': no environment variable expansion.
  bool full_privileges = false;   ///< '+': runs without User=/Group=/sandboxing.
  bool skip_credentials = false;  ///< '!': User=/Group= are not applied to this command.
};

/// One Limit*= setting.
struct ResourceLimit {
  int resource = 0;        ///< RLIMIT_* constant.
  std::uint64_t soft = 0;  ///< Soft limit; RLIM_INFINITY for infinity.
  std::uint64_t hard = 0;  ///< Hard limit; RLIM_INFINITY for infinity.
};

/// One Condition*= or Assert*= line.
struct Condition {
  std::string type;        ///< Without the "Condition"/"Assert" word: "PathExists".
  std::string parameter;   ///< After '!'/'|', specifiers expanded.
  bool negate = false;     ///< '!'.
  bool trigger = false;    ///< '|': one of the triggering conditions must hold.
  bool is_assert = false;  ///< Assert*=: failing is an error, not a skip.
  std::string file;        ///< Where it was written.
  unsigned line = 0;       ///< Line where it was written.
  std::string text;        ///< "ConditionPathExists=!/x" as written, for messages.
};

/// What [Unit] carries for usherd (ordering and dependencies are accepted and dropped).
struct UnitInfo {
  std::vector<std::string> drop_ins;       ///< Drop-in files applied, in order.
  std::string description;                 ///< Description=.
  std::vector<std::string> documentation;  ///< Documentation= URIs.
  std::vector<Condition> conditions;       ///< Condition*= and Assert*=, in order.
};

/// A .socket unit.
struct SocketUnit {
  std::string name;                   ///< "ssh.socket".
  std::string path;                   ///< The main unit file.
  UnitInfo info;                      ///< Description, conditions, drop-ins.
  std::vector<ListenAddress> listen;  ///< Listen*= in order (the LISTEN_FDS order).
  bool accept = false;                ///< Accept=.
  std::string service;                ///< Resolved: Service=, prefix.service or prefix@.service.
  unsigned max_connections = 64;      ///< MaxConnections=.
  unsigned max_connections_per_source = 0;  ///< MaxConnectionsPerSource= (0 = off).
  std::optional<std::uint32_t> backlog;     ///< Backlog= (unset: the kernel's maximum).
  BindIPv6Only bind_ipv6_only = BindIPv6Only::system_default;  ///< BindIPv6Only=.
  bool reuse_port = false;                                     ///< ReusePort=.
  bool free_bind = false;                                      ///< FreeBind=.
  bool keep_alive = false;                                     ///< KeepAlive=.
  bool no_delay = false;                                       ///< NoDelay=.
  /// DeferAcceptSec= (0: off): TCP_DEFER_ACCEPT, a connection is accepted once its client
  /// has sent data (or after this long); rounded up to whole seconds, as systemd does.
  Duration defer_accept{};
  std::optional<std::string> socket_user;   ///< SocketUser= (a name or number).
  std::optional<std::string> socket_group;  ///< SocketGroup=.
  mode_t socket_mode = 0666;                ///< SocketMode=.
  mode_t directory_mode = 0755;             ///< DirectoryMode=.
  std::string file_descriptor_name;  ///< Resolved: FileDescriptorName=, name, or "connection".
  bool remove_on_stop = false;       ///< RemoveOnStop=.
  std::optional<Duration> trigger_limit_interval;   ///< TriggerLimitIntervalSec= (unset: off).
  std::optional<unsigned> trigger_limit_burst;      ///< TriggerLimitBurst= (unset: off).
  std::vector<policy::Cidr> ip_address_allow;       ///< IPAddressAllow=.
  std::vector<policy::Cidr> ip_address_deny;        ///< IPAddressDeny=.
  std::optional<policy::MaxStartups> max_startups;  ///< X-MaxStartups= (this socket's own).
  std::optional<unsigned> per_source_max_startups;  ///< X-PerSourceMaxStartups=.
  std::optional<Duration> startup_timeout;  ///< X-StartupTimeoutSec= (unset: usherd.conf's).
  std::string drop_message;                 ///< X-DropMessage=, escapes resolved.
};

/// Type=.
enum class ServiceType { simple, exec, notify, oneshot };
/// StandardInput=.
enum class StdInput { null, socket };
/// StandardOutput=/StandardError=.
enum class StdOutput { inherit, null, socket, journal };
/// NotifyAccess=.
enum class NotifyAccess { none, main, exec, all };
/// KillMode=.
enum class KillMode { control_group, mixed, process, none };
/// Restart=.
enum class RestartPolicy { no, on_success, on_failure, on_abnormal, on_watchdog, on_abort, always };
/// RuntimeDirectoryPreserve=.
enum class RuntimeDirectoryPreserve { no, yes, restart };

/// "simple", "exec", … (the word as written in unit files) for each enum above.
std::string_view to_string(ServiceType value);
/// The StandardInput= word.
std::string_view to_string(StdInput value);
/// The StandardOutput= word.
std::string_view to_string(StdOutput value);
/// The NotifyAccess= word.
std::string_view to_string(NotifyAccess value);
/// The KillMode= word.
std::string_view to_string(KillMode value);
/// The Restart= word.
std::string_view to_string(RestartPolicy value);

/// What a template needs to be instantiated again: its merged entries and the environment
/// files it read at load time (so instantiation does no I/O unless an EnvironmentFile= path
/// itself names the instance).
struct TemplateSource {
  std::vector<Entry> entries;  ///< Main file then drop-ins, in order.
  std::vector<std::pair<std::string, std::string>> environment_files;  ///< path, contents.
};

/// A .service unit (or a template, or an instance of one).
struct ServiceUnit {
  std::string name;          ///< "ssh@.service".
  std::string path;          ///< The main unit file.
  UnitInfo info;             ///< Description, conditions, drop-ins.
  bool is_template = false;  ///< "foo@.service".
  std::string instance;      ///< The instance for "foo@bar.service", else empty.
  /// True when a value used %i %I %n %N or %f, so instantiate() must re-parse.
  bool uses_instance_specifiers = false;
  std::shared_ptr<const TemplateSource> source;  ///< Set for templates.

  ServiceType type = ServiceType::simple;           ///< Type=.
  std::vector<ExecCommand> exec_start;              ///< ExecStart=.
  std::vector<ExecCommand> exec_start_pre;          ///< ExecStartPre=.
  std::vector<ExecCommand> exec_start_post;         ///< ExecStartPost=.
  std::vector<ExecCommand> exec_reload;             ///< ExecReload=.
  std::vector<ExecCommand> exec_stop;               ///< ExecStop=.
  std::optional<std::string> user;                  ///< User=.
  std::optional<std::string> group;                 ///< Group=.
  std::vector<std::string> supplementary_groups;    ///< SupplementaryGroups=.
  std::vector<std::string> environment;             ///< "K=V", Environment= then EnvironmentFile=.
  std::vector<std::string> unset_environment;       ///< UnsetEnvironment= words ("K" or "K=V").
  std::vector<std::string> environment_files;       ///< EnvironmentFile= as written ("-" kept).
  std::optional<std::string> working_directory;     ///< WorkingDirectory= ("~" = home of User=).
  bool working_directory_missing_ok = false;        ///< WorkingDirectory=-…
  std::optional<std::string> root_directory;        ///< RootDirectory=.
  mode_t umask = 0022;                              ///< UMask=.
  std::optional<int> nice;                          ///< Nice=.
  std::vector<ResourceLimit> limits;                ///< Limit*=, one per resource.
  StdInput standard_input = StdInput::null;         ///< StandardInput=.
  StdOutput standard_output = StdOutput::inherit;   ///< StandardOutput= as configured.
  StdOutput standard_error = StdOutput::inherit;    ///< StandardError= as configured.
  NotifyAccess notify_access = NotifyAccess::none;  ///< Resolved: main for Type=notify if unset.
  KillMode kill_mode = KillMode::control_group;     ///< KillMode=.
  int kill_signal = 15;                             ///< KillSignal= (SIGTERM).
  Duration timeout_start = std::chrono::seconds(90);      ///< TimeoutStartSec=.
  Duration timeout_stop = std::chrono::seconds(90);       ///< TimeoutStopSec=.
  RestartPolicy restart = RestartPolicy::no;              ///< Restart=.
  Duration restart_sec = std::chrono::milliseconds(100);  ///< RestartSec=.
  std::vector<int> restart_prevent_exit_status;           ///< RestartPreventExitStatus= codes.
  std::vector<int> restart_prevent_signals;               ///< RestartPreventExitStatus= signals.
  std::vector<std::string> runtime_directory;             ///< RuntimeDirectory= (relative to /run).
  mode_t runtime_directory_mode = 0755;                   ///< RuntimeDirectoryMode=.
  RuntimeDirectoryPreserve runtime_directory_preserve =
      RuntimeDirectoryPreserve::no;      ///< …Preserve=.
  bool no_new_privileges = false;        ///< NoNewPrivileges=.
  std::optional<std::string> ready_log;  ///< X-ReadyLog= (a PCRE2 pattern, uncompiled).
  /// X-ExitStatusOutcomes= as written (unset: chosen by runs_sshd()).
  std::optional<policy::ExitStatusOutcomes> exit_status_outcomes;

  /// StandardOutput= after systemd's inherit rule: socket when stdin is the socket, else journal.
  StdOutput effective_standard_output() const;
  /// StandardError= after the inherit rule: whatever stdout is.
  StdOutput effective_standard_error() const;
  /// True when the service signals readiness (Type=notify or X-ReadyLog=).
  bool declares_readiness() const { return type == ServiceType::notify || ready_log.has_value(); }
  /// True when the first ExecStart= runs OpenSSH's sshd or sshd-session (by the executable's
  /// or argv[0]'s file name), whose exit status says how a connection ended.
  bool runs_sshd() const;
  /// The exit-outcome table of this service's instances: X-ExitStatusOutcomes=, else openssh
  /// for a service that runs sshd, else legacy.
  policy::ExitStatusOutcomes effective_exit_status_outcomes() const;
};

/// usherd.conf: the global policy and the metrics listener.
struct DaemonConfig {
  std::string path;  ///< The file it came from; empty for built-in defaults.
  policy::MaxStartups max_startups{10, 30, 100};             ///< [Policy] MaxStartups=.
  std::optional<unsigned> per_source_max_startups;           ///< PerSourceMaxStartups= (none: off).
  policy::NetBlockSize per_source_net_block_size{32, 128};   ///< PerSourceNetBlockSize=.
  Duration startup_timeout = std::chrono::seconds(120);      ///< StartupTimeoutSec=.
  std::vector<policy::Cidr> exempt_sources;                  ///< ExemptSources=.
  unsigned reserved_startups = 2;                            ///< ReservedStartups=.
  policy::PenaltyConfig per_source_penalties;                ///< PerSourcePenalties=.
  std::vector<policy::Cidr> per_source_penalty_exempt_list;  ///< PerSourcePenaltyExemptList=.
  /// WaitingRoom=yes, MaxParked=1000, PerSourceMaxParked=100, MaxParkedWait=8s.
  policy::WaitingRoomConfig waiting_room{.enabled = true};
  policy::StallConfig stall;                    ///< ReclaimStalledSec=5s, ReclaimStalledBytes=512.
  std::optional<ListenAddress> metrics_listen;  ///< [Metrics] ListenStream= (off).
};

}  // namespace usherd::units

// One resolved xinetd service as a usherd socket + service pair; see xinetd_service.h.
//
// The table of what becomes what is README's "Migrating from xinetd or launchd"; every
// attribute is either carried over, reported as a warning (and listed in the units' header),
// or makes the service fail with an error. The only silent attributes are those that have no
// effect in xinetd either (rpc_* outside RPC services, NORETRY and REUSE, whose behaviour is
// usherd's own). Access rules are never loosened without --allow-open. One mapper class
// walks xinetd's whole attribute table, hence the file's length.
#include <algorithm>
#include <cstdio>
#include <set>

#include "importer/access_list.h"
#include "importer/sshd_readiness.h"
#include "importer/unit_plan.h"
#include "importer/xinetd_service.h"
#include "units/environment.h"

namespace usherd::importer {
namespace {

constexpr std::array<std::string_view, 13> kKnownFlags = {
    "INTERCEPT", "NORETRY", "IDONLY", "NAMEINARGS", "NODELAY", "KEEPALIVE", "NOLIBWRAP",
    "SENSOR",    "IPv4",    "IPv6",   "LABELED",    "REUSE",   "DISABLE"};

// Attributes usherd has no counterpart for, and why.
struct Dropped {
  std::string_view name;
  std::string_view why;
};
constexpr std::array<Dropped, 11> kDropped = {{
    {"log_on_success", "usherd logs every accepted connection and every end itself"},
    {"log_on_failure", "usherd logs refused connections itself, as rate-limited summaries"},
    {"log_type", "usherd writes its log to stderr or the journal"},
    {"access_times", "usherd has no time-of-day access rule"},
    {"banner", "usherd sends no banner"},
    {"banner_success", "usherd sends no banner"},
    {"banner_fail", "usherd sends no banner; a refused client may get X-DropMessage= instead"},
    {"max_load", "usherd does not refuse connections by load average"},
    {"deny_time", "usherd has no SENSOR services"},
    {"mdns", "usherd does not register services with mDNS"},
    {"libwrap", "usherd does not use tcp_wrappers"},
}};

std::optional<std::int64_t> parse_int(const std::string& text, std::int64_t min, std::int64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::size_t i = text[0] == '-' || text[0] == '+' ? 1 : 0;
  if (i == text.size()) return std::nullopt;
  std::int64_t v = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  if (text[0] == '-') v = -v;
  if (v < min || v > max) return std::nullopt;
  return v;
}

// parsers.c get_limit(): a number with an optional K or M (1024-based) suffix.
std::optional<std::uint64_t> parse_limit(const std::string& text) {
  std::string digits = text;
  std::uint64_t multiplier = 1;
  if (!digits.empty() && (digits.back() == 'k' || digits.back() == 'K')) multiplier = 1024;
  if (!digits.empty() && (digits.back() == 'm' || digits.back() == 'M')) multiplier = 1 << 20;
  if (multiplier != 1) digits.pop_back();
  auto v = parse_int(digits, 0, INT64_MAX / (1 << 20));
  if (!v) return std::nullopt;
  return static_cast<std::uint64_t>(*v) * multiplier;
}

// A value word that starts with '#' was meant as a comment, which xinetd.conf has only for
// whole lines (parsesup.c next_line()); messages about such a word say so.
std::string comment_note(const std::string& word) {
  return word.starts_with('#') ? " ('#' starts a comment only at the beginning of a line)" : "";
}

class Mapper {
 public:
  Mapper(const XinetdService& service, const Options& options, const System& system,
         const TcpWrappers& wrappers)
      : s_(service), options_(options), system_(system), wrappers_(wrappers) {
    job_.name = service.entry->name;
    job_.subject = "service " + job_.name;
    job_.file = service.entry->file;
    job_.line = service.entry->line;
    job_.findings = service.entry->errors;
    job_.findings.insert(job_.findings.end(), service.findings.begin(), service.findings.end());
  }

  Job run() {
    bool ok = std::none_of(job_.findings.begin(), job_.findings.end(),
                           [](const Finding& f) { return f.severity == Severity::error; });
    if (ok) ok = map();
    sort_by_line(job_.findings);
    if (!ok) {
      job_.outcome = Outcome::failed;
    } else if (job_.outcome != Outcome::disabled) {
      auto units = render_units(plan_, job_.findings);
      if (!units) {
        error(job_.line, "cannot write the units: " + units.error().message);
        job_.outcome = Outcome::failed;
      } else {
        job_.units = std::move(*units);
        job_.outcome = Outcome::imported;
      }
    }
    return std::move(job_);
  }

 private:
  // -- findings ------------------------------------------------------------------------
  void add(Severity severity, const std::string& file, unsigned line, std::string message) {
    job_.findings.push_back({severity, file, line, job_.subject, std::move(message)});
  }
  bool error(unsigned line, std::string message) {
    add(Severity::error, job_.file, line, std::move(message));
    return false;
  }
  bool error(const XinetdAttribute& a, const std::string& message) {
    add(Severity::error, a.file, a.line, a.text() + ": " + message);
    return false;
  }
  void warn(const XinetdAttribute& a, const std::string& message) {
    add(Severity::warning, a.file, a.line, a.text() + ": " + message);
  }
  // An access rule usherd cannot express: fails the service unless --allow-open (after
  // every such rule has been reported).
  void open_access(const XinetdAttribute& a, const std::string& message) {
    if (!options_.allow_open) {
      error(a, message +
                   "; refusing to import an access rule as open access (--allow-open "
                   "drops it)");
      refused_ = true;
      return;
    }
    warn(a, message + "; dropped (--allow-open)");
  }

  // Words of only_from / no_access that xinetd logs and skips. Skipping a no_access word
  // widens access, and an only_from word was meant to admit someone: the service fails
  // unless --allow-open, which skips them as xinetd does.
  void skip_access_words(const XinetdAttribute& a, const std::string& message) {
    if (!options_.allow_open) {
      error(a, message +
                   "; xinetd logs a word it cannot parse and skips it; refusing to guess the "
                   "access rule meant (--allow-open skips it too)");
      refused_ = true;
      return;
    }
    warn(a, message +
                "; xinetd logs a word it cannot parse and skips it, and so does the import "
                "(--allow-open)");
  }

  const XinetdAttribute* get(const std::string& name) const { return s_.get(name); }
  std::string value(const std::string& name) const {
    const XinetdAttribute* a = get(name);
    return a && !a->values.empty() ? a->values.front() : std::string();
  }

  // -- the mapping ---------------------------------------------------------------------
  bool map() {
    std::set<std::string> types;
    if (const auto* t = get("type")) {
      for (const auto& v : t->values) {
        if (v != "INTERNAL" && v != "RPC" && v != "TCPMUX" && v != "TCPMUXPLUS" && v != "UNLISTED")
          return error(*t, "unknown type " + v + comment_note(v) + "; xinetd disables the service");
        types.insert(v);
      }
    }
    if (const auto* f = get("flags")) {
      for (const auto& v : f->values) {
        if (std::find(kKnownFlags.begin(), kKnownFlags.end(), v) == kKnownFlags.end())
          return error(*f, "unknown flag " + v + comment_note(v) + "; xinetd disables the service");
        flags_.insert(v);
      }
    }
    bool disabled =
        value("disable") == "yes" || flags_.count("DISABLE") || s_.disabled_by_defaults != nullptr;
    // Kinds of service usherd cannot run, whatever their attributes say.
    const XinetdAttribute* kind_line = nullptr;
    std::string kind;
    if (const auto* t = get("type"); t && types.count("INTERNAL")) {
      kind_line = t;
      kind =
          "one of xinetd's built-in services (echo, chargen, daytime, discard, time, ...), "
          "which have no program to run; usherd has no built-in services";
    } else if (flags_.count("SENSOR")) {
      kind_line = get("flags");
      kind = "a SENSOR service is a trap inside xinetd that denies every client touching it";
    } else if (types.count("RPC")) {
      kind_line = get("type");
      kind = "RPC services are registered with the portmapper, which usherd does not do";
    } else if (types.count("TCPMUX") || types.count("TCPMUXPLUS")) {
      kind_line = get("type");
      kind = "TCPMUX (RFC 1078) services are reached through xinetd's own tcpmux multiplexer";
    }
    if (disabled) {
      const XinetdAttribute* why = get("disable");
      if (why == nullptr || value("disable") != "yes") why = s_.disabled_by_defaults;
      if (why == nullptr) why = get("flags");  // the DISABLE flag
      // A disabled service is not running under xinetd, so skipping it loses nothing, even
      // when it could not be imported anyway (Debian's stock /etc/xinetd.d: every built-in
      // service, all disabled).
      if (!options_.include_disabled) {
        add(Severity::notice, why->file, why->line,
            "skipped: disabled (" + why->text() + "); " +
                (kind_line ? "not importable even with --include-disabled: " + kind
                           : std::string("--include-disabled imports it")));
        job_.outcome = Outcome::disabled;
        return true;
      }
      if (!kind_line)
        warn(*why, "imported as a unit that runs once it is installed (--include-disabled)");
    }
    if (kind_line)
      return error(*kind_line,
                   "not importable: " + kind + (disabled ? " (it is disabled, too)" : ""));
    if (const auto* d = get("disable"); d && value("disable") != "yes" && value("disable") != "no")
      return error(*d, "expected yes or no");

    return map_socket() && map_program() && map_credentials() && map_environment() &&
           map_limits() && map_access() && report_dropped() && finish();
  }

  bool map_socket() {
    const auto* socket_type = get("socket_type");
    if (socket_type == nullptr)
      return error(job_.line, "socket_type is missing; xinetd disables the service");
    std::string type = socket_type->values.front();
    if (type == "raw") return error(*socket_type, "not importable: usherd has no raw sockets");
    if (type == "seqpacket")
      return error(*socket_type, "not importable: seqpacket over IP (SCTP) is not supported");
    if (type != "stream" && type != "dgram") return error(*socket_type, "unknown socket type");
    stream_ = type == "stream";
    protocol_ = stream_ ? "tcp" : "udp";
    if (const auto* p = get("protocol")) {
      if (p->values.front() != protocol_)
        return error(*p, "socket_type = " + type + " needs protocol " + protocol_);
    }
    const auto* wait = get("wait");
    if (wait == nullptr) return error(job_.line, "wait is missing; xinetd disables the service");
    if (value("wait") != "yes" && value("wait") != "no") return error(*wait, "expected yes or no");
    plan_.accept = value("wait") == "no";
    if (plan_.accept && !stream_)
      return error(*wait,
                   "not importable: a datagram service that does not wait gets a "
                   "new server per datagram, which usherd does not do (wait = yes "
                   "hands the socket to one server)");

    auto port = service_port();
    if (!port) return false;
    auto address = listen_address(*port);
    if (!address) return false;
    plan_.socket.insert(plan_.socket.begin(),
                        {stream_ ? "ListenStream" : "ListenDatagram", *address, ""});
    plan_.add_socket("Accept", plan_.accept ? "yes" : "no");
    if (flags_.count("NODELAY") && stream_) plan_.add_socket("NoDelay", "yes");
    if (flags_.count("KEEPALIVE") && stream_) plan_.add_socket("KeepAlive", "yes");
    return true;
  }

  std::optional<std::uint16_t> service_port() {
    const auto* port_line = get("port");
    std::optional<std::uint16_t> port;
    if (port_line) {
      auto v = parse_int(port_line->values.front(), 0, 65535);
      if (!v) return error(*port_line, "invalid port number"), std::nullopt;
      port = static_cast<std::uint16_t>(*v);
    }
    const auto* type = get("type");
    bool unlisted = type && std::count(type->values.begin(), type->values.end(), "UNLISTED");
    if (unlisted) {
      if (!port)
        return error(job_.line, "type = UNLISTED needs a port; xinetd disables the service"),
               std::nullopt;
      return port;
    }
    // Service names go through /etc/services, with the protocol (confparse.c check_entry()).
    auto listed = system_.service_port(job_.name, protocol_);
    if (!listed)
      return error(job_.line, job_.name + "/" + protocol_ + " is not in /etc/services; " +
                                  "xinetd needs type = UNLISTED and a port for it"),
             std::nullopt;
    if (port && *port != *listed)
      return error(*port_line, job_.name + " is port " + std::to_string(*listed) +
                                   " in /etc/services; xinetd refuses another port unless "
                                   "type = UNLISTED"),
             std::nullopt;
    return listed;
  }

  std::optional<std::string> listen_address(std::uint16_t port) {
    std::string p = std::to_string(port);
    bool v4 = flags_.count("IPv4") > 0, v6 = flags_.count("IPv6") > 0;
    const auto* v6only = get("v6only");
    if (v6only && value("v6only") != "yes" && value("v6only") != "no")
      return error(*v6only, "expected yes or no"), std::nullopt;
    if (const auto* bind = get("bind")) {
      std::string host = bind->values.front();
      std::optional<policy::IpAddress> ip;
      if (auto parsed = policy::IpAddress::parse(host)) {
        ip = *parsed;
      } else {
        // xinetd resolves a name once, when it reads its configuration, preferring IPv6
        // unless the service is IPv4 only (confparse.c service_fill()).
        auto all = system_.resolve_host(host, false, false);
        bool want_v4 = v4 && !v6;
        for (const auto& a : all)
          if (!ip || (a.is_v4() == want_v4 && ip->is_v4() != want_v4)) ip = a;
        if (!ip) return error(*bind, "does not resolve to an address"), std::nullopt;
        warn(*bind, "resolved once, now, to " + ip->to_string() +
                        " (xinetd too resolves it once, when it starts)");
      }
      if (ip->is_v4()) return ip->to_string() + ":" + p;
      if (*ip == policy::IpAddress::from_v6({}))  // bind = ::, the IPv6 any address
        plan_.add_socket("BindIPv6Only", value("v6only") == "yes" ? "ipv6-only" : "both");
      return "[" + ip->to_string() + "]:" + p;
    }
    if (s_.ignored_bind)
      open_access(*s_.ignored_bind->attribute,
                  s_.ignored_bind->why + "; xinetd ignores the line and listens on every address");
    if (v4 && !v6) return "0.0.0.0:" + p;
    // xinetd's default is one IPv6 socket that takes IPv4 too, unless v6only = yes.
    plan_.add_socket("BindIPv6Only", value("v6only") == "yes" ? "ipv6-only" : "both");
    return v6 ? "[::]:" + p : p;
  }

  bool map_program() {
    if (const auto* r = get("redirect"))
      return error(*r, "not importable: xinetd forwards these connections to " + r->values[0] +
                           " port " + r->values[1] +
                           " itself; usherd has no forwarder (systemd-socket-proxyd " +
                           "in an Accept=no service can do it)");
    const auto* server = get("server");
    if (server == nullptr)
      return error(job_.line, "server is missing; xinetd disables the service");
    std::string path = server->values.front();
    if (path.empty() || path.front() != '/' || path.find("/./") != std::string::npos ||
        path.find("/../") != std::string::npos || path.find("//") != std::string::npos)
      return error(*server, "the server must be an absolute, normalized path");
    plan_.exec.path = path;
    const auto* args = get("server_args");
    if (args && args->values.empty())
      return error(*args, "server_args without a value; xinetd disables the service");
    std::vector<std::string> words = args ? args->values : std::vector<std::string>{};
    if (flags_.count("NAMEINARGS")) {
      // The first server_args word is argv[0] (tcpd in "server", the daemon in its args).
      if (words.empty())
        return error(*get("flags"), "NAMEINARGS needs server_args; xinetd disables the service");
      plan_.exec.argv0 = words.front();
      words.erase(words.begin());
    } else {
      // confparse.c fix_server_argv(): argv[0] is the last component of the server path,
      // which programs that look at their own name (tcpd, multi-call binaries) depend on.
      plan_.exec.argv0 = path.substr(path.rfind('/') + 1);
    }
    plan_.exec.args = std::move(words);
    plan_.add_service("StandardInput", "socket",
                      plan_.accept ? ""
                                   : "wait = yes: the listening socket itself on stdin, as "
                                     "inetd's wait mode hands it over.");
    return true;
  }

  bool map_credentials() {
    const auto* user = get("user");
    if (user == nullptr) return error(job_.line, "user is missing; xinetd disables the service");
    auto u = plain_value(user->values.front());
    if (!u) return error(*user, u.error().message);
    plan_.add_service("User", *u);
    if (const auto* group = get("group")) {
      auto g = plain_value(group->values.front());
      if (!g) return error(*group, g.error().message);
      plan_.add_service("Group", *g);
    }
    const auto* groups = get("groups");
    if (groups && value("groups") != "yes" && value("groups") != "no")
      return error(*groups, "expected yes or no");
    if (value("groups") != "yes" &&
        system_.has_supplementary_groups(user->values.front()).value_or(false))
      warn(groups ? *groups : *user,
           "xinetd runs the server without supplementary groups (groups = no is its default); "
           "usherd gives it " +
               user->values.front() + "'s supplementary groups, as groups = yes");
    return true;
  }

  bool map_environment() {
    std::vector<std::string> env;
    for (const ListOp& op : list("env")) {
      if (op.op == AssignOp::set) env.clear();
      for (const auto& v : op.attribute->values) {
        auto eq = v.find('=');
        if (eq == std::string::npos)
          return error(*op.attribute,
                       v + " has no '='" + comment_note(v) + "; xinetd disables the service");
        if (!units::is_valid_environment_name(std::string_view(v).substr(0, eq)))
          return error(*op.attribute, v + ": not a variable name usherd accepts");
        env.push_back(v);
      }
    }
    for (const auto& e : env) {
      auto eq = e.find('=');
      plan_.set_environment(e.substr(0, eq), e.substr(eq + 1));
    }
    std::vector<std::string> pass;
    const XinetdAttribute* last = nullptr;
    for (const ListOp& op : list("passenv")) {
      if (op.op == AssignOp::set) pass.clear();
      for (const auto& v : op.attribute->values) {
        std::erase(pass, v);
        if (op.op != AssignOp::remove) pass.push_back(v);
      }
      last = op.attribute;
    }
    if (!pass.empty())
      warn(*last,
           "usherd starts services with a clean environment (PATH, and USER, HOME, "
           "... with User=), not with its own; set these with Environment= by hand");
    if (const auto* umask = get("umask")) {
      unsigned mask = 0;
      const std::string& v = umask->values.front();
      if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string::npos)
        return error(*umask, "expected an octal mask");
      std::sscanf(v.c_str(), "%o", &mask);
      char text[8];
      std::snprintf(text, sizeof text, "%04o", mask & 0777);
      plan_.add_service("UMask", text);
    }
    if (const auto* nice = get("nice")) {
      auto n = parse_int(nice->values.front(), INT32_MIN, INT32_MAX);
      if (!n) return error(*nice, "expected a number");
      std::int64_t clamped = std::clamp<std::int64_t>(*n, -20, 19);
      if (clamped != *n)
        warn(*nice,
             "outside -20..19; the kernel clamps it, Nice= takes " + std::to_string(clamped));
      plan_.add_service("Nice", std::to_string(clamped));
    }
    return true;
  }

  bool map_limits() {
    static constexpr std::pair<std::string_view, std::string_view> kLimits[] = {
        {"rlimit_as", "LimitAS"},     {"rlimit_cpu", "LimitCPU"},
        {"rlimit_data", "LimitDATA"}, {"rlimit_files", "LimitNOFILE"},
        {"rlimit_rss", "LimitRSS"},   {"rlimit_stack", "LimitSTACK"}};
    for (const auto& [attribute, key] : kLimits) {
      const auto* a = get(std::string(attribute));
      if (a == nullptr) continue;
      const std::string& v = a->values.front();
      std::optional<std::uint64_t> n;
      if (v != "UNLIMITED")
        n = attribute == "rlimit_cpu" ? [&]() -> std::optional<std::uint64_t> {
          auto x = parse_int(v, 0, INT64_MAX);
          return x ? std::optional<std::uint64_t>(*x) : std::nullopt;
        }()
            : parse_limit(v);
      if (v != "UNLIMITED" && !n) return error(*a, "expected a number or UNLIMITED");
      // xinetd sets the soft and the hard limit to the value (child.c).
      plan_.add_service(std::string(key), n ? std::to_string(*n) : "infinity");
    }

    const auto* instances = get("instances");
    std::optional<std::int64_t> max;
    if (instances && value("instances") != "UNLIMITED") {
      max = parse_int(value("instances"), 0, UINT32_MAX);
      if (!max) return error(*instances, "expected a number or UNLIMITED");
      if (*max == 0) return error(*instances, "0 instances never starts a server");
    }
    if (!plan_.accept) {
      // xinetd suspends a wait = yes service while its server runs: instances has no effect.
    } else if (max) {
      plan_.add_socket("MaxConnections", std::to_string(*max));
    } else {
      plan_.add_socket(
          "MaxConnections", "4294967295",
          instances ? "instances = UNLIMITED." : "xinetd's default: no limit on instances.");
    }
    if (const auto* per_source = get("per_source");
        per_source && value("per_source") != "UNLIMITED") {
      auto n = parse_int(value("per_source"), 0, UINT32_MAX);
      if (!n) return error(*per_source, "expected a number or UNLIMITED");
      if (*n == 0) return error(*per_source, "0 refuses every client");
      if (plan_.accept) {
        plan_.add_socket("MaxConnectionsPerSource", std::to_string(*n));
      } else {
        warn(*per_source, "usherd counts sources only for connections it accepts (wait = no)");
      }
    }
    if (const auto* cps = get("cps")) {
      auto rate = parse_int(cps->values[0], 0, UINT32_MAX);
      auto pause = parse_int(cps->values[1], 0, UINT32_MAX);
      if (!rate || !pause) return error(*cps, "expected two numbers");
      if (plan_.accept) {
        plan_.add_socket("TriggerLimitIntervalSec", "1s");
        plan_.add_socket("TriggerLimitBurst", std::to_string(*rate));
        warn(*cps, "the " + std::to_string(*pause) +
                       " s pause is not carried over: usherd drops "
                       "the connections over " +
                       std::to_string(*rate) +
                       " a second and keeps the "
                       "service up");
      } else {
        warn(*cps, "usherd limits the rate only of connections it accepts (wait = no)");
      }
    }
    return true;
  }

  std::vector<ListOp> list(const std::string& name) const {
    auto it = s_.lists.find(name);
    return it == s_.lists.end() ? std::vector<ListOp>{} : it->second;
  }

  // One parsed only_from / no_access word applied to the list, with the line's operator.
  static void apply_address(AssignOp op, AddressEntry entry, std::vector<AddressEntry>& out) {
    if (op == AssignOp::remove) {
      std::erase_if(out, [&](const AddressEntry& e) {
        return e.text == entry.text || (!e.networks.empty() && e.networks == entry.networks);
      });
    } else {
      out.push_back(std::move(entry));
    }
  }

  // The words of an only_from / no_access line from the first one that starts with '#': what
  // the author meant as a comment, and xinetd reads as more addresses, each on its own. A
  // word it parses as an address or a network (a "# was 10.0.0.6" note) is applied by xinetd,
  // and so by the import; the others (the '#' itself, "office") it logs and skips. A name
  // after the '#' counts among the skipped words: xinetd keeps it only when it resolves, as
  // a host name the import could not express anyway, so the outcome is the same (refused, or
  // dropped with --allow-open). One finding covers the whole comment.
  bool comment_addresses(const ListOp& op, std::size_t first, std::vector<AddressEntry>& out) {
    const auto& values = op.attribute->values;
    std::string comment;
    std::vector<std::string> applied;
    for (std::size_t k = first; k < values.size(); ++k)
      comment += (comment.empty() ? "" : " ") + values[k];
    std::string what = "'" + comment +
                       "' is not a comment (xinetd.conf comments take a whole line) but more "
                       "words to read as addresses";
    for (std::size_t k = first; k < values.size(); ++k) {
      auto entry = parse_xinetd_address(values[k], system_);
      if (!entry)
        return error(*op.attribute,
                     what + ": " + entry.error().message + "; xinetd disables the service");
      if (!entry->skipped.empty() || !entry->unexpressible.empty()) continue;
      applied.push_back(values[k]);
      apply_address(op.op, std::move(*entry), out);
    }
    if (!applied.empty()) {
      std::string list = applied.front();
      for (std::size_t k = 1; k < applied.size(); ++k)
        list += (k + 1 == applied.size() ? " and " : ", ") + applied[k];
      what += "; xinetd reads " + list + " in it as " +
              (applied.size() == 1 ? "an address" : "addresses") + ", and so does the import";
    }
    skip_access_words(*op.attribute, what);
    return true;
  }

  // Evaluates an only_from / no_access list with its operators. present: the attribute was
  // given (an empty only_from admits nobody).
  bool address_list(const std::string& name, bool& present, std::vector<AddressEntry>& out) {
    for (const ListOp& op : list(name)) {
      present = true;
      if (op.op == AssignOp::set) out.clear();
      const auto& values = op.attribute->values;
      for (std::size_t i = 0; i < values.size(); ++i) {
        const std::string& v = values[i];
        if (v.starts_with('#')) {
          if (!comment_addresses(op, i, out)) return false;
          break;
        }
        auto entry = parse_xinetd_address(v, system_);
        if (!entry) return error(*op.attribute, entry.error().message);
        if (!entry->skipped.empty()) {
          skip_access_words(*op.attribute, v + ": " + entry->skipped);
          continue;
        }
        apply_address(op.op, std::move(*entry), out);
      }
      origin_[name] = op.attribute;
    }
    return true;
  }

  bool map_access() {
    bool has_only_from = false, has_no_access = false;
    std::vector<AddressEntry> only_from, no_access;
    if (!address_list("only_from", has_only_from, only_from) ||
        !address_list("no_access", has_no_access, no_access))
      return false;
    if (flags_.count("IDONLY"))
      open_access(*get("flags"),
                  "IDONLY refuses clients that do not identify themselves "
                  "through RFC 1413, which usherd does not ask");
    if (!flags_.count("NOLIBWRAP") && !wrappers_.file.empty()) {
      std::string where = wrappers_.file + ":" + std::to_string(wrappers_.line);
      if (!options_.allow_open) {
        error(job_.line, "xinetd also applies the tcp_wrappers rules in " + where +
                             " to this service, and usherd does not read them; write them as "
                             "only_from / no_access (or give the service the NOLIBWRAP flag), "
                             "or pass --allow-open to drop them");
        refused_ = true;
      } else {
        add(Severity::warning, job_.file, job_.line,
            "the tcp_wrappers rules in " + where + " are not carried over (--allow-open)");
      }
    }
    if (!plan_.accept && (has_only_from || !no_access.empty())) {
      const XinetdAttribute* a = origin_[has_only_from ? "only_from" : "no_access"];
      open_access(*a,
                  "usherd applies IPAddressAllow= and IPAddressDeny= to connections it "
                  "accepts itself; a wait = yes server takes the socket");
      return !refused_;
    }
    std::vector<policy::Cidr> allow, deny;
    bool dropped_only_from = false;
    for (auto* list : {&only_from, &no_access}) {
      bool is_allow = list == &only_from;
      for (const AddressEntry& e : *list) {
        if (e.unexpressible.empty()) {
          auto& out = is_allow ? allow : deny;
          out.insert(out.end(), e.networks.begin(), e.networks.end());
          continue;
        }
        const XinetdAttribute* a = origin_[is_allow ? "only_from" : "no_access"];
        open_access(*a, e.text + " cannot be expressed: " + e.unexpressible);
        if (is_allow) dropped_only_from = true;
      }
    }
    if (refused_) return false;
    if (has_only_from && allow.empty() && dropped_only_from) {
      warn(*origin_["only_from"],
           "nothing expressible is left of only_from, so the service is "
           "open to every client not in no_access (--allow-open)");
      has_only_from = false;
    }
    if (has_only_from) {
      // xinetd refuses what no_access matches even inside only_from; IPAddressAllow= would
      // win over IPAddressDeny=, so the refused networks are cut out of the allowed ones.
      auto allowed = subtract_networks(allow, deny);
      if (!allowed) return error(*origin_["only_from"], allowed.error().message);
      if (!allowed->empty()) plan_.add_socket("IPAddressAllow", join_networks(*allowed));
      plan_.add_socket("IPAddressDeny", "any", allowed->empty() ? "only_from admits nobody." : "");
    } else if (!deny.empty()) {
      plan_.add_socket("IPAddressDeny", join_networks(deny));
    }
    return true;
  }

  bool report_dropped() {
    for (const auto& d : kDropped) {
      if (const auto* a = get(std::string(d.name))) warn(*a, std::string(d.why));
      for (const ListOp& op : list(std::string(d.name))) warn(*op.attribute, std::string(d.why));
    }
    if (flags_.count("LABELED")) warn(*get("flags"), "LABELED: usherd sets no SELinux context");
    if (flags_.count("INTERCEPT") && !plan_.accept)
      warn(*get("flags"), "INTERCEPT: usherd does not filter a wait = yes server's traffic");
    return true;
  }

  bool finish() {
    // child.c: every server gets REMOTE_HOST, the client's address.
    add(Severity::warning, job_.file, job_.line,
        plan_.accept ? "xinetd gives the server REMOTE_HOST=<client address>; usherd gives "
                       "REMOTE_ADDR and REMOTE_PORT instead"
                     : "xinetd gives the server REMOTE_HOST=<client address>; a wait = yes "
                       "server takes the socket itself, and usherd names no client");
    std::string id = s_.id();
    auto stem = unit_stem(id);
    if (!stem) return error(job_.line, "'" + id + "' does not make a unit name");
    plan_.stem = *stem;
    plan_.description = "xinetd service " + id + " (imported)";
    plan_.origin = "Imported by `usherctl import xinetd` from " + job_.file + ":" +
                   std::to_string(job_.line) + " (service " + job_.name + ").";
    if (plan_.accept && is_sshd_per_connection(plan_.exec)) add_sshd_readiness(plan_);
    return true;
  }

  const XinetdService& s_;
  const Options& options_;
  const System& system_;
  const TcpWrappers& wrappers_;
  Job job_;
  UnitPlan plan_;
  std::set<std::string> flags_;
  bool stream_ = true;
  std::string protocol_;
  std::map<std::string, const XinetdAttribute*> origin_;
  bool refused_ = false;
};

}  // namespace

Job map_xinetd_service(const XinetdService& service, const Options& options, const System& system,
                       const TcpWrappers& wrappers) {
  return Mapper(service, options, system, wrappers).run();
}

}  // namespace usherd::importer

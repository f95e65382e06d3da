// One launchd job (launchd.plist(5)) as a usherd socket + service pair.
//
// Only jobs with Sockets can be imported: usherd starts programs for connections. With
// inetdCompatibility the program gets each connection (Wait = false: Accept=yes) or the
// listening socket (Wait = true: Accept=no) on stdin and stdout, as from inetd; without it the
// program would call launch_activate_socket(3), and gets the sockets as LISTEN_FDS
// (sd_listen_fds(3)) instead, named after the Sockets key when there is one. Every other key
// is carried over, or reported as a warning, or (SockPassive false, SecureSocketWithKey) makes
// the job fail. Apple's OpenSSH job (com.openssh.sshd), in its older form (the host-key
// wrapper as Program, "sshd -i" as its arguments) and its macOS 12 form (the wrapper alone),
// runs sshd -i directly and gets the readiness setup of sshd_readiness.h. inetdCompatibility's
// Instances becomes MaxConnections=; the legacy UID / GID keys become User= / Group=. A
// relative program path is refused (launchd takes it from the job's working directory), save a
// bare name as the first word of ProgramArguments, which launchd looks up in PATH. One mapper
// class walks launchd's whole key table, hence the file's length.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <set>

#include "importer/importer.h"
#include "importer/plist.h"
#include "importer/sshd_readiness.h"
#include "importer/unit_plan.h"
#include "units/environment.h"

namespace usherd::importer {
namespace {

using Type = PlistValue::Type;

// Keys with no counterpart, and why (the default reason covers the rest).
struct Dropped {
  std::string_view key;
  std::string_view why;
};
constexpr std::array<Dropped, 12> kDropped = {{
    {"StartInterval", "usherd starts programs for connections only"},
    {"StartCalendarInterval", "usherd starts programs for connections only"},
    {"WatchPaths", "usherd starts programs for connections only"},
    {"QueueDirectories", "usherd starts programs for connections only"},
    {"StartOnMount", "usherd starts programs for connections only"},
    {"ThrottleInterval", "usherd has no minimum time between starts"},
    {"TimeOut", "usherd has no idle timeout"},
    {"SessionCreate", "macOS audit sessions do not exist on Linux"},
    {"POSIXSpawnType", "a macOS scheduling class"},
    {"ProcessType", "a macOS scheduling class"},
    {"LowPriorityIO", "usherd sets no I/O priority"},
    {"MachServices", "Mach services do not exist on Linux"},
}};

// Keys that change nothing here.
constexpr std::array<std::string_view, 4> kHarmless = {"OnDemand", "Debug", "LaunchOnlyOnce",
                                                       "EnableTransactions"};

constexpr std::pair<std::string_view, std::string_view> kLimitKeys[] = {
    {"Core", "LimitCORE"},
    {"CPU", "LimitCPU"},
    {"Data", "LimitDATA"},
    {"FileSize", "LimitFSIZE"},
    {"MemoryLock", "LimitMEMLOCK"},
    {"NumberOfFiles", "LimitNOFILE"},
    {"NumberOfProcesses", "LimitNPROC"},
    {"ResidentSetSize", "LimitRSS"},
    {"Stack", "LimitSTACK"},
};

// usherd's default hard RLIMIT_NOFILE (DESIGN "Handoff"): a soft-only NumberOfFiles keeps it.
constexpr std::int64_t kDefaultHardNoFile = 524288;

// Apple's host-key wrapper around sshd, and where Debian's openssh-server puts sshd.
constexpr std::string_view kKeygenWrapper = "sshd-keygen-wrapper";
constexpr const char* kDebianSshd = "/usr/sbin/sshd";

std::string_view base_name(std::string_view path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string with_article(std::string_view noun) {
  bool vowel =
      !noun.empty() && std::string_view("aeiou").find(noun.front()) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(noun);
}

class Mapper {
 public:
  Mapper(const PlistValue& job, const std::string& path, const Options& options,
         const System& system, Job& out)
      : job_(job), path_(path), options_(options), system_(system), out_(out) {}

  const UnitPlan& plan() const { return plan_; }

  bool run() {
    if (job_.type != Type::dict) return error(job_.line, "the top-level value is not a dictionary");
    const PlistValue* label = find("Label", Type::string);
    if (!label || label->text.empty()) return error(job_.line, "Label is missing");
    out_.name = label->text;
    out_.subject = "job " + out_.name;
    out_.line = label->line;
    if (!ok_) return false;
    if (const PlistValue* d = find("Disabled", Type::boolean); d && d->boolean) {
      if (!options_.include_disabled) {
        out_.findings.push_back({Severity::notice, path_, d->line, out_.subject,
                                 "skipped: Disabled is true; --include-disabled imports it"});
        out_.outcome = Outcome::disabled;
        return true;
      }
      warn(d->line,
           "Disabled is true: imported as a unit that runs once it is installed "
           "(--include-disabled)");
    }
    return map_program() && map_sockets() && map_process() && report_rest() && finish();
  }

 private:
  // Until the Label is known, findings are about the file.
  std::string subject() const { return out_.subject; }

  bool error(unsigned line, std::string message) {
    out_.findings.push_back({Severity::error, path_, line, subject(), std::move(message)});
    ok_ = false;
    return false;
  }
  void warn(unsigned line, std::string message) {
    out_.findings.push_back({Severity::warning, path_, line, subject(), std::move(message)});
  }
  // A key of the job dict with the expected type; a wrong type is an error.
  const PlistValue* find(std::string_view key, Type type) { return typed(job_, key, type); }
  const PlistValue* typed(const PlistValue& dict, std::string_view key, Type type) {
    const PlistValue* v = dict.find(key);
    if (v == nullptr) return nullptr;
    if (v->type != type) {
      PlistValue wanted;
      wanted.type = type;
      error(v->line, std::string(key) + " is " + with_article(v->type_name()) + ", not " +
                         with_article(wanted.type_name()));
      return nullptr;
    }
    return v;
  }

  bool map_program() {
    const PlistValue* program = find("Program", Type::string);
    const PlistValue* arguments = find("ProgramArguments", Type::array);
    if (!ok_) return false;
    std::vector<std::string> argv;
    if (arguments) {
      for (const PlistValue& a : arguments->array) {
        if (a.type != Type::string) return error(a.line, "ProgramArguments holds a non-string");
        argv.push_back(a.text);
      }
    }
    if (!program && argv.empty()) return error(job_.line, "neither Program nor ProgramArguments");
    std::string path = program ? program->text : argv.front();
    unsigned path_line = program ? program->line : arguments->array.front().line;
    std::string_view key = program ? "Program" : "ProgramArguments";
    if (path.empty()) return error(path_line, std::string(key) + " is an empty program path");
    if (base_name(path) == kKeygenWrapper &&
        (argv.empty() || base_name(argv.front()) == kKeygenWrapper))
      return map_keygen_wrapper(path, path_line, key, argv);
    if (program && base_name(path) == kKeygenWrapper && argv.front().starts_with("/")) {
      // The older form: the wrapper creates the host keys on first use, then runs its
      // arguments ("/usr/sbin/sshd -i").
      warn(program->line, "Program = " + program->text +
                              ": Apple's host-key wrapper is not carried over; "
                              "the service runs " +
                              argv.front() +
                              " itself (Debian creates host keys when "
                              "openssh-server is installed)");
      path = argv.front();
    }
    // launchd spawns Program as a path (posix_spawn(2), no PATH search) and, without
    // Program, ProgramArguments' first word with posix_spawnp(3), which searches PATH only
    // for a name without a '/'. Every other relative path is taken from the job's working
    // directory, which a unit cannot say for the program's path: refused, with the reason.
    if (path.front() != '/' && (program || path.find('/') != std::string::npos))
      return error(path_line, std::string(key) + " " + path + " is a relative path: launchd " +
                                  (program && path.find('/') == std::string::npos
                                       ? "does not search PATH for Program, but runs it"
                                       : "runs it") +
                                  " from the job's working directory (WorkingDirectory, else "
                                  "/); write the absolute path");
    plan_.exec.path = path;
    if (!argv.empty()) {
      if (argv.front() != path) plan_.exec.argv0 = argv.front();
      plan_.exec.args.assign(argv.begin() + 1, argv.end());
    }
    if (path.front() != '/')
      warn(path_line, path + " is looked up in usherd's fixed PATH, not launchd's");
    return true;
  }

  // Apple's OpenSSH job since macOS 12 runs only the wrapper, which creates missing host keys
  // (sshd-keygen) and then runs "sshd -i", passing on any further arguments. The unit runs
  // sshd -i itself, where Debian installs it; finish() then gives it the readiness setup.
  bool map_keygen_wrapper(const std::string& path, unsigned line, std::string_view key,
                          const std::vector<std::string>& argv) {
    plan_.exec.path = kDebianSshd;
    if (argv.size() > 1) plan_.exec.args.assign(argv.begin() + 1, argv.end());
    if (std::find(plan_.exec.args.begin(), plan_.exec.args.end(), "-i") == plan_.exec.args.end())
      plan_.exec.args.insert(plan_.exec.args.begin(), "-i");
    std::string command = kDebianSshd;
    for (const auto& a : plan_.exec.args) command += " " + a;
    warn(line, std::string(key) + " = " + path +
                   ": Apple's wrapper creates missing host keys, then runs sshd -i; the service "
                   "runs " +
                   command +
                   " itself (Debian creates the host keys when openssh-server is installed)");
    plan_.exec.comment =
        "Apple's " + path + " runs sshd-keygen, then sshd -i: the unit runs sshd\n" +
        "directly, where Debian's openssh-server installs it (which also creates the host keys).";
    return true;
  }

  // One entry of Sockets: a dict describing one listening socket.
  bool map_socket(const std::string& name, const PlistValue& s) {
    if (s.type != Type::dict) return error(s.line, "socket " + name + " is not a dictionary");
    for (const auto& [key, value] : s.dict) {
      static const std::set<std::string> kKnown = {
          "SockType",          "SockPassive",         "SockNodeName",  "SockServiceName",
          "SockFamily",        "SockProtocol",        "SockPathName",  "SockPathMode",
          "SockPathOwner",     "SockPathGroup",       "Bonjour",       "MulticastGroup",
          "ReceivePacketInfo", "SecureSocketWithKey", "SockPathSecure"};
      if (!kKnown.count(key)) warn(value.line, "socket " + name + ": " + key + ": unknown key");
    }
    auto str = [&](std::string_view key) { return typed(s, key, Type::string); };
    std::string type = "stream";
    if (const auto* t = str("SockType")) type = t->text;
    if (type != "stream" && type != "dgram" && type != "seqpacket")
      return error(s.line, "socket " + name + ": unknown SockType " + type);
    if (const auto* passive = typed(s, "SockPassive", Type::boolean); passive && !passive->boolean)
      return error(passive->line, "socket " + name +
                                      ": not importable: SockPassive = false "
                                      "asks launchd to connect out, which usherd does not do");
    if (const auto* key = s.find("SecureSocketWithKey"))
      return error(key->line, "socket " + name +
                                  ": not importable: SecureSocketWithKey makes "
                                  "a private socket per session, which usherd does not do");
    if (const auto* b = s.find("Bonjour"))
      warn(b->line, "socket " + name + ": Bonjour: usherd does not announce services");
    if (const auto* m = s.find("MulticastGroup"))
      warn(m->line, "socket " + name + ": MulticastGroup: usherd joins no multicast group");
    if (const auto* r = s.find("ReceivePacketInfo"))
      warn(r->line, "socket " + name + ": ReceivePacketInfo: usherd does not set IP_PKTINFO");
    if (!ok_) return false;
    std::string key = type == "stream"  ? "ListenStream"
                      : type == "dgram" ? "ListenDatagram"
                                        : "ListenSequentialPacket";
    if (const auto* path = str("SockPathName")) {
      auto value = plain_value(path->text);
      if (!value || path->text.front() != '/')
        return error(path->line, "socket " + name + ": SockPathName must be an absolute path");
      plan_.socket.insert(plan_.socket.begin() + static_cast<long>(listen_count_++),
                          {key, *value, ""});
      return map_path_options(name, s);
    }
    if (type == "seqpacket")
      return error(s.line, "socket " + name + ": seqpacket over IP (SCTP) is not supported");
    std::string protocol = type == "stream" ? "tcp" : "udp";
    if (const auto* p = str("SockProtocol"); p && p->text != (type == "stream" ? "TCP" : "UDP"))
      return error(p->line, "socket " + name + ": SockProtocol " + p->text + " does not fit " +
                                "SockType " + type);
    std::optional<std::uint16_t> port;
    const PlistValue* service = s.find("SockServiceName");
    if (service && service->type == Type::integer) {
      if (service->integer < 0 || service->integer > 65535)
        return error(service->line, "socket " + name + ": SockServiceName is not a port");
      port = static_cast<std::uint16_t>(service->integer);
    } else if (service && service->type == Type::string) {
      const std::string& t = service->text;
      if (!t.empty() && t.size() <= 5 && t.find_first_not_of("0123456789") == std::string::npos &&
          std::stoul(t) <= 65535) {
        port = static_cast<std::uint16_t>(std::stoul(t));
      } else {
        port = system_.service_port(t, protocol);
        if (!port)
          return error(service->line,
                       "socket " + name + ": " + t + "/" + protocol + " is not in /etc/services");
      }
    } else {
      return error(service ? service->line : s.line,
                   "socket " + name + ": SockServiceName (a port or service name) is missing");
    }
    std::string family = "IPv4v6";
    if (const auto* f = str("SockFamily")) family = f->text;
    if (family != "IPv4" && family != "IPv6" && family != "IPv4v6")
      return error(s.line, "socket " + name + ": unknown SockFamily " + family);
    std::string p = std::to_string(*port);
    std::vector<std::string> addresses;
    if (const auto* node = str("SockNodeName")) {
      std::vector<policy::IpAddress> ips;
      if (auto ip = policy::IpAddress::parse(node->text)) {
        ips.push_back(*ip);
      } else {
        // launchd binds every address getaddrinfo(3) gives for the name, at load time.
        ips = system_.resolve_host(node->text, family == "IPv4", family == "IPv6");
        if (ips.empty())
          return error(node->line, "socket " + name + ": " + node->text + " does not resolve");
        std::string list;
        for (const auto& a : ips) list += (list.empty() ? "" : ", ") + a.to_string();
        warn(node->line,
             "socket " + name + ": SockNodeName " + node->text + " resolved once, now, to " + list);
      }
      for (const auto& a : ips)
        addresses.push_back(a.is_v4() ? a.to_string() + ":" + p : "[" + a.to_string() + "]:" + p);
    } else if (family == "IPv4") {
      addresses.push_back("0.0.0.0:" + p);
    } else if (family == "IPv6") {
      addresses.push_back("[::]:" + p);
      v6_only_ = true;
    } else {
      addresses.push_back(p);
      dual_stack_ = true;
    }
    for (const auto& a : addresses)
      plan_.socket.insert(plan_.socket.begin() + static_cast<long>(listen_count_++), {key, a, ""});
    return true;
  }

  bool map_path_options(const std::string& name, const PlistValue& s) {
    auto integer = [&](std::string_view key) { return typed(s, key, Type::integer); };
    auto once = [&](const std::string& key, const std::string& value, unsigned line,
                    std::string comment = {}) {
      auto it = path_options_.find(key);
      if (it == path_options_.end()) {
        path_options_[key] = value;
        plan_.add_socket(key, value, std::move(comment));
      } else if (it->second != value) {
        warn(line, "socket " + name + ": " + key + "=" + value + " differs from another " +
                       "socket's " + it->second + "; one unit has one " + key + "=");
      }
    };
    if (const auto* mode = integer("SockPathMode")) {
      // A plist integer is decimal: 438 is mode 0666. launchd hands the value to chmod(2),
      // which takes the permission bits only, so a value written with the file type bits of
      // stat(2)'s st_mode (Apple's cups job: 49663, 0140777 with S_IFSOCK) means 0777.
      if (mode->integer < 0 || mode->integer > 0177777)
        return error(mode->line, "socket " + name + ": SockPathMode " +
                                     std::to_string(mode->integer) + " is not a file mode");
      auto bits = static_cast<unsigned>(mode->integer);
      char text[8], written[16];
      std::snprintf(text, sizeof text, "%04o", bits & 07777);
      std::snprintf(written, sizeof written, "%o", bits);
      once("SocketMode", text, mode->line,
           bits > 07777 ? "SockPathMode " + std::to_string(bits) + " (0" + written +
                              ") without its file type bits, as chmod(2) applies it."
                        : "");
    }
    if (const auto* owner = integer("SockPathOwner"); owner && owner->integer >= 0)
      once("SocketUser", std::to_string(owner->integer), owner->line);
    if (const auto* group = integer("SockPathGroup"); group && group->integer >= 0)
      once("SocketGroup", std::to_string(group->integer), group->line);
    return ok_;
  }

  bool map_sockets() {
    const PlistValue* sockets = find("Sockets", Type::dict);
    if (!ok_) return false;
    if (sockets == nullptr || sockets->dict.empty())
      return error(job_.line,
                   "not importable: the job has no Sockets, and usherd starts "
                   "programs only for connections on their sockets");
    const PlistValue* inetd = find("inetdCompatibility", Type::dict);
    if (!ok_) return false;
    bool wait = false;
    const PlistValue* instances = nullptr;
    if (inetd) {
      for (const auto& [key, value] : inetd->dict)
        if (key != "Wait" && key != "Instances")
          warn(value.line, "inetdCompatibility: " + key + ": unknown key");
      if (const auto* w = typed(*inetd, "Wait", Type::boolean)) wait = w->boolean;
      instances = typed(*inetd, "Instances", Type::integer);
      if (!ok_) return false;
      if (instances && (instances->integer < 1 || instances->integer > UINT32_MAX))
        return error(instances->line, "inetdCompatibility: Instances must be 1 or more");
    }
    plan_.accept = inetd && !wait;
    std::vector<std::string> names;
    for (const auto& [name, value] : sockets->dict) {
      names.push_back(name);
      if (value.type == Type::array) {
        for (const PlistValue& one : value.array)
          if (!map_socket(name, one)) return false;
      } else if (!map_socket(name, value)) {
        return false;
      }
    }
    bool datagram = std::any_of(plan_.socket.begin(), plan_.socket.end(),
                                [](const Setting& s) { return s.key == "ListenDatagram"; });
    if (plan_.accept && datagram)
      return error(inetd->line,
                   "not importable: inetdCompatibility with Wait = false on a "
                   "datagram socket starts a program per datagram, which usherd "
                   "does not do (Wait = true hands the socket to one program)");
    if (dual_stack_ && v6_only_)
      warn(sockets->line,
           "a socket with SockFamily IPv6 shares the unit with a dual-stack one; "
           "both take IPv4 too");
    if (dual_stack_ || v6_only_)
      plan_.add_socket("BindIPv6Only", v6_only_ && !dual_stack_ ? "ipv6-only" : "both");
    plan_.socket.insert(plan_.socket.begin() + static_cast<long>(listen_count_),
                        {"Accept", plan_.accept ? "yes" : "no", ""});
    if (plan_.accept && instances) {
      // launch.h's LAUNCH_JOBINETDCOMPATIBILITY_INSTANCES: how many copies of an inetd-style
      // job may run at once, as xinetd's instances; usherd refuses the connections over it.
      plan_.add_socket("MaxConnections", std::to_string(instances->integer),
                       "inetdCompatibility Instances: at most this many programs at once.");
    } else if (plan_.accept) {
      plan_.add_socket("MaxConnections", "4294967295",
                       "launchd starts a program for every connection, without a limit.");
    } else if (instances) {
      warn(instances->line,
           "inetdCompatibility: Instances has no effect with Wait = true, where one program "
           "takes the listening socket");
    }
    if (inetd) {
      if (wait && listen_count_ != 1)
        return error(inetd->line,
                     "inetdCompatibility with Wait = true hands one listening "
                     "socket to the program; this job has " +
                         std::to_string(listen_count_));
      plan_.add_service("StandardInput", "socket");
    } else {
      warn(sockets->line,
           "the program gets its sockets as LISTEN_FDS (sd_listen_fds(3)), not "
           "through launch_activate_socket(3)");
      if (names.size() == 1) {
        plan_.add_socket("FileDescriptorName", names.front(),
                         "The Sockets key, as launch_activate_socket(3) names the sockets.");
      } else {
        std::string order;
        for (const auto& n : names) order += (order.empty() ? "" : ", ") + n;
        warn(sockets->line,
             "the sockets are not named per Sockets key; they come in this "
             "order: " +
                 order);
      }
    }
    return true;
  }

  bool map_process() {
    auto name_setting = [&](std::string_view key, const char* unit_key) {
      if (const auto* v = find(key, Type::string)) {
        auto value = plain_value(v->text);
        if (!value) return error(v->line, std::string(key) + ": " + value.error().message);
        plan_.add_service(unit_key, *value);
      }
      return ok_;
    };
    if (!name_setting("UserName", "User") || !name_setting("GroupName", "Group")) return false;
    // launchd 1.0 (Mac OS X 10.4) took numeric ids as UID and GID; later launchd derives them
    // from UserName and GroupName, which win when both are given.
    auto legacy_id = [&](std::string_view key, std::string_view name_key, const char* unit_key) {
      const auto* v = find(key, Type::integer);
      if (v == nullptr) return ok_;
      if (v->integer < 0 || v->integer >= UINT32_MAX)
        return error(v->line, std::string(key) + " is not a " +
                                  (unit_key == std::string_view("User") ? "user" : "group") +
                                  " id");
      if (job_.find(name_key))
        warn(v->line, std::string(key) + ": ignored, as launchd ignores it when " +
                          std::string(name_key) + " is set");
      else
        plan_.add_service(unit_key, std::to_string(v->integer));
      return true;
    };
    if (!legacy_id("UID", "UserName", "User") || !legacy_id("GID", "GroupName", "Group"))
      return false;
    const PlistValue* user = job_.find("UserName");
    if (const auto* init = find("InitGroups", Type::boolean);
        init && !init->boolean && user && user->type == Type::string &&
        system_.has_supplementary_groups(user->text).value_or(false))
      warn(init->line, "InitGroups = false: usherd gives the service " + user->text +
                           "'s supplementary groups too");
    auto directory = [&](std::string_view key, const char* unit_key) {
      if (const auto* v = find(key, Type::string)) {
        auto value = plain_value(v->text);
        if (!value || v->text.front() != '/')
          return error(v->line, std::string(key) + " must be an absolute path");
        plan_.add_service(unit_key, *value);
      }
      return ok_;
    };
    if (!directory("WorkingDirectory", "WorkingDirectory") ||
        !directory("RootDirectory", "RootDirectory"))
      return false;
    if (const PlistValue* umask = job_.find("Umask")) {
      long mask = -1;
      if (umask->type == Type::integer) mask = static_cast<long>(umask->integer);
      if (umask->type == Type::string && !umask->text.empty() &&
          umask->text.find_first_not_of("01234567") == std::string::npos && umask->text.size() <= 4)
        mask = std::stol(umask->text, nullptr, 8);
      if (mask < 0 || mask > 0777) return error(umask->line, "Umask is not a mask");
      char text[8];
      std::snprintf(text, sizeof text, "%04lo", mask);
      plan_.add_service("UMask", text);
    }
    if (const auto* nice = find("Nice", Type::integer)) {
      if (nice->integer < -20 || nice->integer > 19)
        return error(nice->line, "Nice must be within -20..19");
      plan_.add_service("Nice", std::to_string(nice->integer));
    }
    if (const auto* env = find("EnvironmentVariables", Type::dict)) {
      for (const auto& [key, value] : env->dict) {
        if (value.type != Type::string)
          return error(value.line, "EnvironmentVariables: " + key + " is not a string");
        if (!units::is_valid_environment_name(key))
          return error(value.line, "EnvironmentVariables: " + key + " is not a variable name");
        plan_.set_environment(key, value.text);
      }
    }
    if (!ok_) return false;
    return map_limits() && map_stdio();
  }

  bool map_limits() {
    const PlistValue* soft = find("SoftResourceLimits", Type::dict);
    const PlistValue* hard = find("HardResourceLimits", Type::dict);
    if (!ok_) return false;
    for (const auto* dict : {soft, hard}) {
      if (dict == nullptr) continue;
      for (const PlistEntry& entry : dict->dict) {
        const std::string& key = entry.key;
        const PlistValue& value = entry.value;
        bool known = std::any_of(std::begin(kLimitKeys), std::end(kLimitKeys),
                                 [&](const auto& k) { return k.first == key; });
        if (!known) return error(value.line, key + ": not a resource limit launchd knows");
        if (value.type != Type::integer || value.integer < 0)
          return error(value.line, key + ": a limit is a non-negative integer");
      }
    }
    for (const auto& [key, unit_key] : kLimitKeys) {
      const PlistValue* s = soft ? soft->find(key) : nullptr;
      const PlistValue* h = hard ? hard->find(key) : nullptr;
      if (!s && !h) continue;
      // launchd sets only what is given and keeps the other limit; usherd's Limit*= sets
      // both, so a missing one becomes what usherd would otherwise give.
      std::string hard_text = h ? std::to_string(h->integer)
                              : key == "NumberOfFiles"
                                  ? std::to_string(std::max(kDefaultHardNoFile, s->integer))
                                  : "infinity";
      std::string soft_text = s ? std::to_string(s->integer) : hard_text;
      if (s && h && s->integer > h->integer)
        return error(s->line, std::string(key) + ": the soft limit is above the hard one");
      plan_.add_service(std::string(unit_key),
                        soft_text == hard_text ? soft_text : soft_text + ":" + hard_text);
    }
    return true;
  }

  bool map_stdio() {
    auto path_key = [&](std::string_view key, const char* unit_key) {
      const PlistValue* v = find(key, Type::string);
      if (v == nullptr) return;
      if (v->text == "/dev/null") {
        plan_.add_service(unit_key, "null");
      } else {
        warn(v->line, std::string(key) + " = " + v->text +
                          ": usherd writes no file; the "
                          "output goes to usherd's log");
        plan_.add_service(unit_key, "journal");
      }
    };
    path_key("StandardOutPath", "StandardOutput");
    path_key("StandardErrorPath", "StandardError");
    if (const auto* in = find("StandardInPath", Type::string))
      warn(in->line, "StandardInPath = " + in->text + ": usherd gives " +
                         (plan_.has_service("StandardInput") ? "the socket" : "/dev/null") +
                         " on stdin");
    if (const auto* exit = find("ExitTimeOut", Type::integer); exit && exit->integer >= 0)
      plan_.add_service("TimeoutStopSec", std::to_string(exit->integer));
    return ok_;
  }

  bool report_rest() {
    static const std::set<std::string> kMapped = {"Label",
                                                  "Program",
                                                  "ProgramArguments",
                                                  "Disabled",
                                                  "UserName",
                                                  "GroupName",
                                                  "UID",
                                                  "GID",
                                                  "InitGroups",
                                                  "Umask",
                                                  "WorkingDirectory",
                                                  "RootDirectory",
                                                  "EnvironmentVariables",
                                                  "SoftResourceLimits",
                                                  "HardResourceLimits",
                                                  "inetdCompatibility",
                                                  "Sockets",
                                                  "Nice",
                                                  "StandardOutPath",
                                                  "StandardErrorPath",
                                                  "StandardInPath",
                                                  "ExitTimeOut"};
    for (const auto& [key, value] : job_.dict) {
      if (kMapped.count(key)) continue;
      if (std::find(kHarmless.begin(), kHarmless.end(), key) != kHarmless.end()) continue;
      if ((key == "RunAtLoad" || key == "KeepAlive") && value.type == Type::boolean &&
          !value.boolean)
        continue;
      std::string why = "no counterpart in usherd";
      for (const auto& d : kDropped)
        if (d.key == key) why = d.why;
      if (key == "RunAtLoad" || key == "KeepAlive")
        why = "usherd starts the program for connections, not at boot or again after it exits";
      warn(value.line, key + ": " + why);
    }
    return true;
  }

  bool finish() {
    auto stem = unit_stem(out_.name);
    if (!stem) return error(out_.line, "Label '" + out_.name + "' does not make a unit name");
    plan_.stem = *stem;
    plan_.description = "launchd job " + out_.name + " (imported)";
    plan_.origin =
        "Imported by `usherctl import launchd` from " + path_ + " (Label " + out_.name + ").";
    if (plan_.accept && is_sshd_per_connection(plan_.exec)) {
      if (plan_.has_service("StandardError"))
        warn(job_.find("StandardErrorPath") ? job_.find("StandardErrorPath")->line : job_.line,
             "StandardErrorPath: sshd's log goes to usherd's log instead, where its readiness "
             "line is read");
      add_sshd_readiness(plan_);
    }
    return true;
  }

  const PlistValue& job_;
  const std::string& path_;
  const Options& options_;
  const System& system_;
  Job& out_;
  UnitPlan plan_;
  bool ok_ = true;
  std::size_t listen_count_ = 0;
  bool dual_stack_ = false;
  bool v6_only_ = false;
  std::map<std::string, std::string> path_options_;
};

}  // namespace

Job import_launchd_text(std::string_view text, const std::string& path, const Options& options,
                        const System& system) {
  Job job;
  job.file = path;
  job.name = path;
  unsigned error_line = 0;
  auto plist = parse_plist(text, error_line);
  if (!plist) {
    job.findings.push_back({Severity::error, path, error_line, "", plist.error().message});
    job.outcome = Outcome::failed;
    return job;
  }
  Mapper mapper(*plist, path, options, system, job);
  bool ok = mapper.run();
  sort_by_line(job.findings);
  if (!ok) {
    job.outcome = Outcome::failed;
    return job;
  }
  if (job.outcome == Outcome::disabled) return job;
  auto units = render_units(mapper.plan(), job.findings);
  if (!units) {
    job.findings.push_back({Severity::error, path, job.line, job.subject,
                            "cannot write the units: " + units.error().message});
    job.outcome = Outcome::failed;
    return job;
  }
  job.units = std::move(*units);
  job.outcome = Outcome::imported;
  return job;
}

}  // namespace usherd::importer

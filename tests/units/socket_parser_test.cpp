// [Socket] keys, X- extensions and the checks that refuse a socket unit.
#include <sys/stat.h>

#include "tests/catch.h"

#include "units/listen_address.h"
#include "units/unit_parser.h"

using namespace usherd::units;
using namespace std::chrono_literals;

namespace {

struct Parsed {
  std::optional<SocketUnit> socket;
  std::vector<Diagnostic> diagnostics;
  std::string messages() const {
    std::string out;
    for (const auto& d : diagnostics) out += d.to_string() + "\n";
    return out;
  }
};

Parsed parse(std::string_view name, std::string_view text) {
  Parsed p;
  auto unit = parse_unit_name(name);
  REQUIRE(unit);
  p.socket = parse_socket_text(*unit, std::string(name), text, p.diagnostics);
  return p;
}

}  // namespace

TEST_CASE("listen addresses parse in every form systemd accepts", "[units][socket][listen]") {
  auto a = parse_listen_address("22", SocketType::stream);
  REQUIRE(a);
  CHECK(a->family == ListenAddress::inet);
  CHECK(a->host.empty());
  CHECK(a->port == 22);
  CHECK(a->to_string() == "*:22");

  auto v4 = parse_listen_address("127.0.0.1:2222", SocketType::stream);
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 2222);

  auto v6 = parse_listen_address("[::1]:22", SocketType::datagram);
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->type == SocketType::datagram);
  CHECK(v6->to_string() == "[::1]:22");

  auto path = parse_listen_address("/run/x.sock", SocketType::seqpacket);
  REQUIRE(path);
  CHECK(path->family == ListenAddress::unix_path);
  CHECK(path->path == "/run/x.sock");

  auto abstract = parse_listen_address("@usherd-test", SocketType::stream);
  REQUIRE(abstract);
  CHECK(abstract->family == ListenAddress::unix_abstract);
  CHECK(abstract->path == "usherd-test");
  CHECK(abstract->to_string() == "@usherd-test");

  CHECK(parse_listen_address("0", SocketType::stream)->port == 0);
}

TEST_CASE("malformed listen addresses are rejected", "[units][socket][listen]") {
  auto text = GENERATE("", "65536", "x", "1.2.3:22", "::1:22", "[::1]", "[::1]22", "[1.2.3.4]:1",
                       "localhost:22", "@", "[fe80::1%eth0]:22", "127.0.0.1:");
  CAPTURE(text);
  CHECK_FALSE(parse_listen_address(text, SocketType::stream));
}

TEST_CASE("a socket unit gets systemd's defaults", "[units][socket]") {
  auto p = parse("echo.socket", "[Socket]\nListenStream=7\n");
  REQUIRE(p.socket);
  CHECK(p.diagnostics.empty());
  const SocketUnit& s = *p.socket;
  CHECK_FALSE(s.accept);
  CHECK(s.service == "echo.service");
  CHECK(s.max_connections == 64);
  CHECK(s.max_connections_per_source == 0);
  CHECK_FALSE(s.backlog);
  CHECK(s.socket_mode == 0666);
  CHECK(s.directory_mode == 0755);
  CHECK(s.file_descriptor_name == "echo.socket");
  CHECK_FALSE(s.trigger_limit_interval);
  CHECK_FALSE(s.max_startups);
  CHECK(s.drop_message.empty());
}

TEST_CASE("every socket key reaches its field", "[units][socket]") {
  auto p = parse("ssh.socket",
                 "[Unit]\nDescription=SSH for %p\n"
                 "[Socket]\n"
                 "ListenStream=127.0.0.1:2222\nListenStream=[::1]:2222\n"
                 "Accept=yes\nMaxConnections=10\nMaxConnectionsPerSource=3\nBacklog=128\n"
                 "BindIPv6Only=ipv6-only\nReusePort=yes\nFreeBind=true\nKeepAlive=on\n"
                 "NoDelay=1\nDeferAcceptSec=2500ms\nSocketUser=sshd\nSocketGroup=nogroup\n"
                 "SocketMode=0600\n"
                 "DirectoryMode=0700\nFileDescriptorName=ssh\nRemoveOnStop=yes\n"
                 "TriggerLimitIntervalSec=2s\nTriggerLimitBurst=200\n"
                 "IPAddressAllow=localhost 192.0.2.0/24\nIPAddressDeny=any\n"
                 "X-MaxStartups=5:50:20\nX-PerSourceMaxStartups=2\nX-StartupTimeoutSec=30s\n"
                 "X-DropMessage=Not allowed at this time\\r\\n\n");
  INFO(p.messages());
  REQUIRE(p.socket);
  CHECK(p.diagnostics.empty());
  const SocketUnit& s = *p.socket;
  CHECK(s.info.description == "SSH for ssh");
  REQUIRE(s.listen.size() == 2);
  CHECK(s.listen[1].host == "::1");
  CHECK(s.accept);
  CHECK(s.service == "ssh@.service");
  CHECK(s.max_connections == 10);
  CHECK(s.max_connections_per_source == 3);
  CHECK(s.backlog == 128u);
  CHECK(s.bind_ipv6_only == BindIPv6Only::ipv6_only);
  CHECK((s.reuse_port && s.free_bind && s.keep_alive && s.no_delay && s.remove_on_stop));
  CHECK(s.defer_accept == Duration(2500ms));
  CHECK(s.socket_user == "sshd");
  CHECK(s.socket_group == "nogroup");
  CHECK(s.socket_mode == 0600);
  CHECK(s.directory_mode == 0700);
  CHECK(s.file_descriptor_name == "ssh");
  CHECK(s.trigger_limit_interval == Duration(2s));
  CHECK(s.trigger_limit_burst == 200u);
  CHECK(s.ip_address_allow.size() == 3);  // 127.0.0.0/8, ::1/128, 192.0.2.0/24
  CHECK(s.ip_address_deny.size() == 2);   // 0.0.0.0/0, ::/0
  REQUIRE(s.max_startups);
  CHECK(*s.max_startups == usherd::policy::MaxStartups{5, 50, 20});
  CHECK(s.per_source_max_startups == 2u);
  CHECK(s.startup_timeout == Duration(30s));
  CHECK(s.drop_message == "Not allowed at this time\r\n");
}

TEST_CASE("an accepting socket names the template and its fds 'connection'", "[units][socket]") {
  auto p = parse("git.socket", "[Socket]\nListenStream=9418\nAccept=yes\n");
  REQUIRE(p.socket);
  CHECK(p.socket->service == "git@.service");
  CHECK(p.socket->file_descriptor_name == "connection");
}

TEST_CASE("Service= names the service of a non-accepting socket", "[units][socket]") {
  auto p = parse("a.socket", "[Socket]\nListenStream=1\nService=b.service\n");
  REQUIRE(p.socket);
  CHECK(p.socket->service == "b.service");
}

TEST_CASE("a single X-MaxStartups number means N:30:N", "[units][socket]") {
  auto p = parse("a.socket", "[Socket]\nListenStream=1\nX-MaxStartups=8\n");
  REQUIRE(p.socket);
  CHECK(*p.socket->max_startups == usherd::policy::MaxStartups{8, 30, 8});
}

TEST_CASE("an empty Listen assignment resets the list", "[units][socket]") {
  auto p = parse("a.socket", "[Socket]\nListenStream=1\nListenStream=\nListenDatagram=2\n");
  REQUIRE(p.socket);
  REQUIRE(p.socket->listen.size() == 1);
  CHECK(p.socket->listen[0].type == SocketType::datagram);
}

TEST_CASE("a bad value is a warning and keeps the default", "[units][socket]") {
  auto p = parse("a.socket", "[Socket]\nListenStream=1\nAccept=maybe\nMaxConnections=0\n");
  REQUIRE(p.socket);
  CHECK_FALSE(p.socket->accept);
  CHECK(p.socket->max_connections == 64);
  CHECK(p.messages() ==
        "a.socket:3: Failed to parse Accept= value, ignoring: maybe (expected a boolean)\n"
        "a.socket:4: Failed to parse MaxConnections= value, ignoring: 0 (must be at least 1)\n");
}

TEST_CASE("unknown keys warn, X- keys are silent", "[units][socket]") {
  auto p = parse("a.socket", "[Socket]\nListenStream=1\nListenBanana=2\nX-Whatever=3\n");
  REQUIRE(p.socket);
  CHECK(p.messages() ==
        "a.socket:3: Unknown key name 'ListenBanana' in section 'Socket', ignoring.\n");
}

TEST_CASE("a socket without Listen is refused", "[units][socket]") {
  auto p = parse("a.socket", "[Socket]\nAccept=yes\n");
  CHECK_FALSE(p.socket);
  REQUIRE(p.diagnostics.size() == 1);
  CHECK(p.diagnostics[0].severity == Diagnostic::Severity::error);
}

TEST_CASE("an accepting socket refuses Service= and datagram listeners", "[units][socket]") {
  CHECK_FALSE(
      parse("a.socket", "[Socket]\nListenStream=1\nAccept=yes\nService=b.service\n").socket);
  CHECK_FALSE(parse("a.socket", "[Socket]\nListenDatagram=1\nAccept=yes\n").socket);
}

#!/usr/bin/python3
"""usherctl import: xinetd and launchd configurations become units the real usherd runs.

An xinetd service for a small program (tr, upper-casing what it reads) is imported with
usherctl into a unit directory, loaded by usherd, and answers a client on 127.0.0.1; its
only_from admits 127.0.0.1 alone, so a client from 127.0.0.2 is refused (reason acl). Debian's
own xinetd configuration (disabled built-in services only) is skipped with exit code 0 and
writes nothing; with --include-disabled it is reported as not importable, exit code 1. A launchd job shaped like Apple's OpenSSH job, on a loopback port,
is imported and a real ssh login goes through it; the startup ends at sshd's "Accepted" line,
which the import set up as readiness. The same holds for the job's current form, which names
only Apple's sshd-keygen-wrapper and sets inetdCompatibility Instances. An address written
after a '#' in no_access, which xinetd reads as one more address, is refused by usherd too.
"""
# ctest-resource-lock: usherdtest;run-sshd

import os
import socket

import harness
from harness import check, check_eq
from test_sshd import SSHD, SshdSetup, check_sshd_config

USHERCTL = harness.usherctl_binary()
TR = "/usr/bin/tr"

XINETD_SERVICE = """\
# An echo-like service: what the client sends comes back in upper case.
service upcase
{
	type		= UNLISTED
	socket_type	= stream
	protocol	= tcp
	port		= 0
	bind		= 127.0.0.1
	wait		= no
	user		= nobody
	server		= /usr/bin/tr
	server_args	= a-z A-Z
	instances	= 5
	only_from	= 127.0.0.1
	flags		= NOLIBWRAP
	log_on_success	= HOST PID
}
"""

APPLE_LIKE_SSHD_PLIST = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Disabled</key>
	<true/>
	<key>Label</key>
	<string>com.openssh.sshd</string>
	<key>Program</key>
	<string>/usr/libexec/sshd-keygen-wrapper</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/sbin/sshd</string>
		<string>-i</string>
		<string>-f</string>
		<string>{config}</string>
	</array>
	<key>Sockets</key>
	<dict>
		<key>Listeners</key>
		<dict>
			<key>SockNodeName</key>
			<string>127.0.0.1</string>
			<key>SockServiceName</key>
			<string>0</string>
			<key>Bonjour</key>
			<array>
				<string>ssh</string>
				<string>sftp-ssh</string>
			</array>
		</dict>
	</dict>
	<key>inetdCompatibility</key>
	<dict>
		<key>Wait</key>
		<false/>
	</dict>
	<key>StandardErrorPath</key>
	<string>/dev/null</string>
</dict>
</plist>
"""

# Apple's job since macOS 12: only the host-key wrapper (which runs sshd -i, passing on its
# further arguments), with Instances next to Wait.
MACOS12_SSHD_PLIST = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.openssh.sshd</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/libexec/sshd-keygen-wrapper</string>
		<string>-f</string>
		<string>{config}</string>
	</array>
	<key>Sockets</key>
	<dict>
		<key>Listeners</key>
		<dict>
			<key>SockNodeName</key>
			<string>127.0.0.1</string>
			<key>SockServiceName</key>
			<string>0</string>
		</dict>
	</dict>
	<key>inetdCompatibility</key>
	<dict>
		<key>Wait</key>
		<false/>
		<key>Instances</key>
		<integer>42</integer>
	</dict>
</dict>
</plist>
"""


def import_units(kind, files, directory, *flags, expect_rc=0):
    """Runs usherctl import ... --to directory; returns (process, {name: text})."""
    os.makedirs(directory, exist_ok=True)
    proc = harness.run([USHERCTL, "import", kind, *files, "--to", directory, *flags],
                       check_rc=False)
    check_eq(proc.returncode, expect_rc,
             f"usherctl import exit code (stderr:\n{proc.stderr})")
    units = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            units[name] = f.read()
    return proc, units


def exchange(port, payload, source="127.0.0.1", refused=False):
    """Connects from source, sends payload, half-closes, returns everything read until EOF.

    A refused client may find the connection already closed by usherd when it writes.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as c:
        c.settimeout(20)
        c.bind((source, 0))
        c.connect(("127.0.0.1", port))
        try:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            if not refused:
                raise
        data = b""
        while True:
            try:
                chunk = c.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data


def test_an_imported_xinetd_service_answers_a_client_through_usherd():
    harness.require_binaries(TR)
    with harness.TempDir("usherd-import.") as tmp:
        source = os.path.join(tmp, "upcase")
        harness.write_file(source, XINETD_SERVICE)
        proc, units = import_units("xinetd", [source], os.path.join(tmp, "units"))
        check_eq(sorted(units), ["upcase.socket", "upcase@.service"], "generated units")
        # The dropped attribute is reported on stderr and in the units' header.
        check(f"{source}:16: warning: service upcase: log_on_success = HOST PID" in proc.stderr,
              f"log_on_success reported with file and line:\n{proc.stderr}")
        check("#   " + source + ":16: log_on_success" in units["upcase.socket"],
              "log_on_success listed at the top of the socket unit")
        check("IPAddressAllow=127.0.0.1/32" in units["upcase.socket"], "only_from carried over")
        check_usherd_accepts(os.path.join(tmp, "units"))

        with harness.Usherd(units) as usherd:
            port = usherd.port("upcase.socket")
            check_eq(exchange(port, b"hello from xinetd\n"), b"HELLO FROM XINETD\n",
                     "the imported service's answer")
            # only_from = 127.0.0.1: another loopback source is refused at accept.
            mark = usherd.log_mark()
            check_eq(exchange(port, b"let me in\n", source="127.0.0.2", refused=True), b"",
                     "answer to a client outside only_from")
            usherd.wait_log(r"drop connection from \[127\.0\.0\.2\]:\d+ .*reason=acl",
                            start_at=mark, what="the acl drop")
            entry = usherd.socket_status("upcase.socket")
            check_eq(entry.get("dropped", {}).get("acl"), 1, "acl drops")
            check_eq(entry.get("admitted"), 1, "admitted connections")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


# no_access with a note after it: xinetd reads 127.0.0.2 in the note as one more address.
XINETD_NOTE_SERVICE = """\
service upcase-note
{
	type		= UNLISTED
	socket_type	= stream
	port		= 0
	bind		= 127.0.0.1
	wait		= no
	user		= nobody
	server		= /usr/bin/tr
	server_args	= a-z A-Z
	no_access	= 127.0.0.3 # 127.0.0.2 as well
	flags		= NOLIBWRAP
}
"""


def test_an_address_after_a_hash_in_no_access_is_refused_as_xinetd_refuses_it():
    harness.require_binaries(TR)
    with harness.TempDir("usherd-import-note.") as tmp:
        source = os.path.join(tmp, "upcase-note")
        harness.write_file(source, XINETD_NOTE_SERVICE)
        # The '#' is a word xinetd cannot parse: refused unless --allow-open.
        proc, units = import_units("xinetd", [source], os.path.join(tmp, "refused"),
                                   expect_rc=1)
        check_eq(units, {}, "units written without --allow-open")
        check(f"{source}:11: error: service upcase-note: " in proc.stderr
              and "'# 127.0.0.2 as well' is not a comment" in proc.stderr,
              f"the refusal names the file, the line and the '#':\n{proc.stderr}")
        proc, units = import_units("xinetd", [source], os.path.join(tmp, "units"),
                                   "--allow-open")
        check("IPAddressDeny=127.0.0.3/32 127.0.0.2/32\n" in units["upcase-note.socket"],
              f"the address in the note is refused too:\n{units['upcase-note.socket']}")
        check_usherd_accepts(os.path.join(tmp, "units"))

        with harness.Usherd(units) as usherd:
            port = usherd.port("upcase-note.socket")
            check_eq(exchange(port, b"from one\n"), b"FROM ONE\n", "answer to 127.0.0.1")
            mark = usherd.log_mark()
            check_eq(exchange(port, b"from two\n", source="127.0.0.2", refused=True), b"",
                     "answer to the client named after the '#'")
            usherd.wait_log(r"drop connection from \[127\.0\.0\.2\]:\d+ .*reason=acl",
                            start_at=mark, what="the acl drop")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


def check_usherd_accepts(units_dir):
    proc = harness.run([harness.usherd_binary(), "--check", "--units", units_dir],
                       check_rc=False)
    check_eq(proc.returncode, 0, f"usherd --check on the imported units:\n{proc.stdout}")


def test_debian_xinetd_configuration_is_skipped_as_disabled():
    if not os.path.isfile("/etc/xinetd.conf") or not os.path.isdir("/etc/xinetd.d"):
        harness.skip("Debian's xinetd package is not installed")
    services = 0
    for name in os.listdir("/etc/xinetd.d"):
        with open(os.path.join("/etc/xinetd.d", name), encoding="utf-8") as f:
            services += sum(1 for line in f if line.split()[:1] == ["service"])
    check(services >= 10, f"Debian's /etc/xinetd.d defines services ({services})")
    with harness.TempDir("usherd-import.") as tmp:
        # Every service is a disabled built-in: nothing runs under xinetd, nothing is lost.
        proc, units = import_units("xinetd", ["/etc/xinetd.conf"], os.path.join(tmp, "units"))
        check_eq(units, {}, "units written for built-in services")
        notices = [line for line in proc.stderr.splitlines()
                   if ": notice: service " in line and "skipped: disabled" in line
                   and "not importable even with --include-disabled" in line]
        check_eq(len(notices), services, f"one notice per service:\n{proc.stderr}")
        check(f"0 imported, {services} disabled (skipped), 0 not importable" in proc.stderr,
              f"summary line:\n{proc.stderr}")
        # Asked to import them anyway, each is an error: a built-in has no program to run.
        proc, units = import_units("xinetd", ["/etc/xinetd.conf"], os.path.join(tmp, "all"),
                                   "--include-disabled", expect_rc=1)
        check_eq(units, {}, "units written for built-in services")
        errors = [line for line in proc.stderr.splitlines()
                  if ": error: service " in line and "type = INTERNAL" in line
                  and "not importable" in line]
        check_eq(len(errors), services, f"one error per service:\n{proc.stderr}")
        check(f"0 imported, 0 disabled (skipped), {services} not importable" in proc.stderr,
              f"summary line:\n{proc.stderr}")


def test_import_usage_errors_exit_2():
    for argv in (["import", "inetd", "/etc/inetd.conf"], ["import", "xinetd"], ["import"]):
        proc = harness.run([USHERCTL, *argv], check_rc=False)
        check_eq(proc.returncode, 2, f"exit code of usherctl {' '.join(argv)}")


def test_a_file_error_is_counted_in_the_summary_beside_exit_status_1():
    with harness.TempDir("usherd-import-fileerror.") as tmp:
        conf = os.path.join(tmp, "xinetd.conf")
        harness.write_file(conf, f"includedir {tmp}/missing\n")
        proc = harness.run([USHERCTL, "import", "xinetd", conf], check_rc=False)
        check_eq(proc.returncode, 1, "exit status")
        check("cannot read included directory" in proc.stderr, "the file error is said")
        check("0 imported, 0 disabled (skipped), 0 not importable, 1 file errors" in proc.stderr,
              f"the summary counts it:\n{proc.stderr}")


def test_an_imported_launchd_sshd_job_logs_in_and_ends_its_startup_at_authentication():
    with SshdSetup() as setup:
        check_sshd_config(setup)
        plist = os.path.join(setup.dir, "ssh.plist")
        harness.write_file(plist, APPLE_LIKE_SSHD_PLIST.replace("{config}", setup.config))
        units_dir = os.path.join(setup.dir, "units")
        proc, units = import_units("launchd", [plist], units_dir, "--include-disabled")
        check_eq(sorted(units), ["com.openssh.sshd.socket", "com.openssh.sshd@.service"],
                 "generated units")
        service = units["com.openssh.sshd@.service"]
        check(f"ExecStart=-{SSHD} -i -f {setup.config} -e\n" in service,
              f"sshd runs without Apple's wrapper, logging to stderr:\n{service}")
        check("X-ReadyLog=Accepted " in service and "StandardError=journal" in service,
              "readiness set up")
        check("sshd-keygen-wrapper" in proc.stderr and "Bonjour" in proc.stderr,
              f"what was not carried over is reported:\n{proc.stderr}")
        check_usherd_accepts(units_dir)

        with harness.Usherd(units) as usherd:
            port = usherd.port("com.openssh.sshd.socket")
            mark = usherd.log_mark()
            out = setup.ssh(port, "echo imported-$((6*7))").stdout
            check_eq(out.strip(), "imported-42", "command output through the imported job")
            usherd.wait_log(r"ready instance=com\.openssh\.sshd@\S+ .*via=log", start_at=mark,
                            what="the startup ending at sshd's Accepted line")
            usherd.wait_instances_gone("com.openssh.sshd.socket")
            check_eq(usherd.status()["startups"]["current"], 0, "startups after the session")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


def test_apples_current_sshd_job_runs_sshd_with_readiness_and_its_instance_limit():
    with SshdSetup() as setup:
        check_sshd_config(setup)
        plist = os.path.join(setup.dir, "ssh.plist")
        harness.write_file(plist, MACOS12_SSHD_PLIST.replace("{config}", setup.config))
        units_dir = os.path.join(setup.dir, "units")
        proc, units = import_units("launchd", [plist], units_dir)
        service = units["com.openssh.sshd@.service"]
        check(f"ExecStart=-{SSHD} -i -f {setup.config} -e\n" in service,
              f"sshd -i runs in place of Apple's wrapper:\n{service}")
        check("# Apple's /usr/libexec/sshd-keygen-wrapper runs sshd-keygen" in service,
              f"the unit says why:\n{service}")
        check("sshd-keygen-wrapper" in proc.stderr, f"a warning says so:\n{proc.stderr}")
        check("MaxConnections=42\n" in units["com.openssh.sshd.socket"],
              "Instances carried over as MaxConnections=")
        check_usherd_accepts(units_dir)

        with harness.Usherd(units) as usherd:
            port = usherd.port("com.openssh.sshd.socket")
            mark = usherd.log_mark()
            out = setup.ssh(port, "echo wrapped-$((6*7))").stdout
            check_eq(out.strip(), "wrapped-42", "command output through the imported job")
            usherd.wait_log(r"ready instance=com\.openssh\.sshd@\S+ .*via=log", start_at=mark,
                            what="the startup ending at sshd's Accepted line")
            usherd.wait_instances_gone("com.openssh.sshd.socket")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


if __name__ == "__main__":
    harness.main(globals())

#!/usr/bin/python3
"""usherd under a real systemd (257, Debian 13) as the shipped usherd.service.

Runs on the host inside scripts/systemd-bed.sh (`make test-systemd`), which boots the
Debian 13 root with systemd-nspawn and passes the container's PID 1 in USHERD_SYSTEMD_PID1;
every command below runs inside the container through `nsenter -t PID1 -a`, so in its
mount, pid and network namespaces (the container has a loopback of its own).

The test installs the usherd built in the root for Debian 13 as /usr/local/sbin/usherd, the
usherd.service the build generates for it (build/dist/usherd.service, from
dist/usherd.service.in), examples/units in /etc/usherd/units, and the examples' data
(scripts/run-examples.sh --prepare-only), then checks what only a real service manager and
journald can show:
- Type=notify: `systemctl start` returns once usherd sent READY=1; the unit is active, with
  usherd's STATUS= text and its watchdog armed;
- a connection to an Accept=yes example unit (git daemon, User=nobody) is served through it;
- `journalctl -o json` carries INSTANCE=, SOCKET= and REMOTE_ADDR= on usherd's records of
  that connection;
- `systemctl stop` stops it.
- journald names every structured record SYSLOG_IDENTIFIER=usherd, whatever the process
  title says.
The unit starts as shipped on a host without /etc/usherd/usherd.conf (built-in defaults). The
test removes what it installed.

Standard library only; run with Debian's /usr/bin/python3.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

CHECKOUT = os.environ.get("USHERD_SYSTEMD_CHECKOUT", "/root/usherd")
UNIT = "usherd.service"
INSTALLED = ["/usr/local/sbin/usherd", "/etc/systemd/system/usherd.service", "/etc/usherd"]


def pid1():
    value = os.environ.get("USHERD_SYSTEMD_PID1")
    if not value:
        harness.skip("no container: run through scripts/systemd-bed.sh (make test-systemd)")
    return value


def inside(*argv, check_rc=True, timeout=60, input_text=None):
    """Runs argv inside the container (all its namespaces); returns CompletedProcess."""
    return harness.run(["nsenter", "-t", pid1(), "-a", *argv], check_rc=check_rc,
                       timeout=timeout, input_text=input_text)


def shell(script, **kw):
    return inside("/bin/sh", "-ec", script, **kw)


def show(unit, *props):
    out = inside("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class JournalFollower:
    """`journalctl --follow -o json` for a unit inside the container, from the journal's end
    when created (its cursor, so nothing written later is missed however soon it comes).
    wait() returns the first record so far or to come that a predicate accepts, or fails at
    the deadline: an event, not a sleep."""

    def __init__(self, unit):
        out = inside("journalctl", "--lines=1", "--show-cursor", "--quiet", "--no-pager").stdout
        cursor = [l for l in out.splitlines() if l.startswith("-- cursor: ")]
        check(cursor, f"journalctl --show-cursor printed a cursor: {out!r}")
        self.proc = subprocess.Popen(
            ["nsenter", "-t", pid1(), "-a", "journalctl", "--follow", "--output=json",
             "--no-pager", f"--after-cursor={cursor[-1][len('-- cursor: '):]}",
             f"--unit={unit}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buffer = b""
        self.records = []

    def wait(self, accept, timeout, what):
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    pass
            for record in self.records[index:]:
                if accept(record):
                    return record
            index = len(self.records)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                messages = "\n".join(str(r.get("MESSAGE")) for r in self.records[-20:])
                raise harness.TestFailure(f"{what} not in the journal within {timeout}s; "
                                          f"last records:\n{messages}")
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise harness.TestFailure(f"journalctl ended before {what}")
                self.buffer += chunk

    def close(self):
        # nsenter forks journalctl into the container's pid namespace and waits for it:
        # end journalctl itself (nsenter's child), or it would outlive nsenter in there.
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            children = []
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def install():
    shell(f"""
        install -m 0755 {CHECKOUT}/build/supervisor/usherd /usr/local/sbin/usherd
        install -m 0644 {CHECKOUT}/build/dist/usherd.service /etc/systemd/system/
        install -d -m 0755 /etc/usherd/units
        install -m 0644 {CHECKOUT}/examples/units/* /etc/usherd/units/
        {CHECKOUT}/scripts/run-examples.sh --prepare-only >/dev/null
        systemctl daemon-reload
    """)


def uninstall():
    inside("systemctl", "stop", UNIT, check_rc=False)
    inside("systemctl", "reset-failed", UNIT, check_rc=False)
    inside("rm", "-rf", *INSTALLED, check_rc=False)
    inside("systemctl", "daemon-reload", check_rc=False)


def test_usherd_runs_as_a_notify_service_and_journald_gets_its_fields():
    check(os.path.exists(os.path.join(os.environ.get("USHERD_SYSTEMD_ROOT", "/nonexistent"),
                                      CHECKOUT.lstrip("/"), "build", "supervisor", "usherd")),
          "usherd is built in the root (scripts/systemd-bed.sh builds it)")
    uninstall()  # what an interrupted run may have left
    install()
    journal = JournalFollower(UNIT)
    try:
        # Type=notify: start returns when usherd sent READY=1 (or fails).
        started = inside("systemctl", "start", UNIT, check_rc=False, timeout=90)
        if started.returncode != 0:
            status = inside("systemctl", "status", "--no-pager", "--lines=30", UNIT,
                            check_rc=False)
            raise harness.TestFailure(f"systemctl start {UNIT} failed "
                                      f"({started.stderr.strip()}):\n{status.stdout}")
        check_eq(inside("systemctl", "is-active", UNIT, check_rc=False).stdout.strip(),
                 "active", "systemctl is-active")
        props = show(UNIT, "Type", "NotifyAccess", "StatusText", "WatchdogUSec", "MainPID",
                     "KillMode")
        check_eq((props["Type"], props["NotifyAccess"], props["KillMode"]),
                 ("notify", "main", "process"), "the unit as shipped")
        check(props["StatusText"] != "", f"usherd's STATUS= reached systemd: {props}")
        check_eq(props["WatchdogUSec"], "30s", "watchdog armed")
        main_pid = props["MainPID"]
        journal.wait(lambda r: "start " in str(r.get("MESSAGE")) and r.get("_PID") == main_pid,
                     30, "usherd's start line")

        # An Accept=yes example: git daemon --inetd as User=nobody, on the container's loopback.
        refs = inside("git", "ls-remote", "git://127.0.0.1:9418/demo.git", timeout=30).stdout
        check("refs/heads/main" in refs, f"git ls-remote through usherd: {refs!r}")

        def about_git_connection(r):
            return (r.get("SOCKET") == "git.socket" and str(r.get("INSTANCE", "")).startswith("git@")
                    and r.get("_PID") == main_pid)

        record = journal.wait(about_git_connection, 30, "a record of the git connection")
        check_eq(record.get("REMOTE_ADDR"), "127.0.0.1", f"REMOTE_ADDR= of {record}")
        check(record["INSTANCE"].endswith(".service"), f"INSTANCE= names the instance: {record}")
        check_eq(record.get("SYSLOG_IDENTIFIER"), "usherd",
                 "SYSLOG_IDENTIFIER= of a record logged with an instance alive")
        print(f"journal: INSTANCE={record['INSTANCE']} SOCKET={record['SOCKET']} "
              f"REMOTE_ADDR={record['REMOTE_ADDR']} "
              f"SYSLOG_IDENTIFIER={record.get('SYSLOG_IDENTIFIER')!r} "
              f"MESSAGE={record.get('MESSAGE')!r}")

        inside("systemctl", "stop", UNIT, timeout=60)
        check_eq(inside("systemctl", "is-active", UNIT, check_rc=False).stdout.strip(),
                 "inactive", "after systemctl stop")
    finally:
        journal.close()
        uninstall()


if __name__ == "__main__":
    harness.main(globals())

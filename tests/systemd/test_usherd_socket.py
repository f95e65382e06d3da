#!/usr/bin/python3
"""usherd behind usherd.socket under a real systemd (257, Debian 13): systemd holds the
listening sockets, so connections queue while usherd restarts, and sessions outlive it.

Runs on the host inside scripts/systemd-bed.sh (`make test-systemd`), every command inside
the container through `nsenter -t PID1 -a` (see test_usherd_service.py). Installed as an
admin would: usherd, the generated usherd.service, the shipped dist/usherd.socket with a
drop-in naming the addresses of two units in /etc/usherd/units (the git example on
127.0.0.1:9418 and an echo service, `cat` per connection as nobody, on 127.0.0.1:9611).

Shown, in order:
- with only usherd.socket started, a connection to the echo address makes systemd start
  usherd.service; usherd gets both sockets in LISTEN_FDS, adopts them by address (logged
  `from=service-manager`, nothing bound by itself) and serves that first connection;
- a session held open (the echo instance) goes on through `systemctl reload usherd` and
  `systemctl restart usherd` (KillMode=process; the restarted usherd re-adopts the instance
  from /run/usherd/state and lists it);
- while usherd.service is stopped the socket stays open in systemd: a client connecting then is
  queued, not refused, systemd starts usherd again, and the client is served;
- `systemctl stop usherd.socket usherd.service` ends it; the test removes what it installed.

Standard library only; run with Debian's /usr/bin/python3.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_usherd_service as bed  # noqa: E402  (inside(), shell(), JournalFollower, pid1())

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

CHECKOUT = bed.CHECKOUT
ECHO_PORT = 9611
SOCKET_UNIT = "usherd.socket"
EXTRA = ["/etc/systemd/system/usherd.socket", "/etc/systemd/system/usherd.socket.d"]

ECHO_SOCKET = f"""[Socket]
ListenStream=127.0.0.1:{ECHO_PORT}
Accept=yes
"""
ECHO_SERVICE = """[Service]
ExecStart=/bin/cat
User=nobody
StandardInput=socket
"""
DROP_IN = f"""[Socket]
ListenStream=127.0.0.1:9418
ListenStream=127.0.0.1:{ECHO_PORT}
"""

# A client inside the container: connects, then copies its stdin's lines to the connection and
# the lines it reads back to stdout, one by one, flushed (an interactive session's shape).
CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
print("connected", flush=True)
r = s.makefile("r")
for line in sys.stdin:
    s.sendall(line.encode())
    print(r.readline(), end="", flush=True)
"""


class Session:
    """An echo session from inside the container, held open across what the test does."""

    def __init__(self):
        self.proc = subprocess.Popen(
            ["nsenter", "-t", bed.pid1(), "-a", "/usr/bin/python3", "-c", CLIENT, str(ECHO_PORT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The test's global deadline bounds every read below.
        line = self.proc.stdout.readline().decode()
        check_eq(line, "connected\n", "the session's connect() (queued in systemd's socket)")

    def echo(self, text, what):
        self.proc.stdin.write(f"{text}\n".encode())
        self.proc.stdin.flush()
        check_eq(self.proc.stdout.readline().decode(), f"{text}\n", what)

    def close(self):
        self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        err = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        check_eq(rc, 0, f"the session's client ended cleanly: {err!r}")


def install():
    bed.install()
    bed.shell(f"""
        install -m 0644 {CHECKOUT}/dist/usherd.socket /etc/systemd/system/
        install -d -m 0755 /etc/systemd/system/usherd.socket.d
        cat > /etc/systemd/system/usherd.socket.d/listen.conf <<'EOF'
{DROP_IN}EOF
        cat > /etc/usherd/units/echo.socket <<'EOF'
{ECHO_SOCKET}EOF
        cat > /etc/usherd/units/echo@.service <<'EOF'
{ECHO_SERVICE}EOF
        systemctl daemon-reload
    """)


def uninstall():
    bed.inside("systemctl", "stop", SOCKET_UNIT, bed.UNIT, check_rc=False)
    bed.inside("systemctl", "reset-failed", SOCKET_UNIT, bed.UNIT, check_rc=False)
    bed.inside("pkill", "-x", "cat", "-u", "nobody", check_rc=False)
    bed.inside("rm", "-rf", *EXTRA, check_rc=False)
    bed.uninstall()


def state(unit):
    return bed.inside("systemctl", "is-active", unit, check_rc=False).stdout.strip()


def main_pid():
    return bed.show(bed.UNIT, "MainPID")["MainPID"]


def status():
    out = bed.inside(f"{CHECKOUT}/build/supervisor/usherctl", "status", "--json").stdout
    return json.loads(out)


def echo_instances():
    return [i for i in status().get("instances", []) if i.get("socket") == "echo.socket"]


def from_usherd(pid, text):
    return lambda r: r.get("_PID") == pid and text in str(r.get("MESSAGE"))


def test_usherd_socket_holds_the_listeners_across_restarts_and_sessions_survive():
    uninstall()  # what an interrupted run may have left
    install()
    journal = bed.JournalFollower(bed.UNIT)
    session = None
    try:
        bed.inside("systemctl", "start", SOCKET_UNIT, timeout=60)
        check_eq((state(SOCKET_UNIT), state(bed.UNIT)), ("active", "inactive"),
                 "the socket listens, usherd not started yet")

        # The first connection starts usherd through the socket.
        session = Session()
        session.echo("first", "the connection that started usherd is served")
        check_eq(state(bed.UNIT), "active", "usherd.service started by its socket")
        pid = main_pid()
        journal.wait(from_usherd(pid, "adopt listeners=2 passed by the service manager"), 30,
                     "usherd adopting the two passed sockets")
        for address, unit in ((f"127.0.0.1:{ECHO_PORT}", "echo.socket"),
                              ("127.0.0.1:9418", "git.socket")):
            journal.wait(from_usherd(pid, f"listen socket={unit} address={address} accept=yes "
                                          "from=service-manager"), 30, f"{unit} adopted")
        # The examples' other units (ssh, dropbear, rsync) are not in the drop-in: usherd binds
        # those itself, as it binds any address systemd does not pass.
        bound_itself = [r.get("MESSAGE") for r in journal.records
                        if r.get("_PID") == pid
                        and str(r.get("MESSAGE")).startswith(("listen socket=echo.socket ",
                                                              "listen socket=git.socket "))
                        and "from=service-manager" not in str(r.get("MESSAGE"))]
        check_eq(bound_itself, [], "usherd bound neither passed address itself")
        refs = bed.inside("git", "ls-remote", "git://127.0.0.1:9418/demo.git", timeout=30).stdout
        check("refs/heads/main" in refs, f"git through the other passed socket: {refs!r}")
        instances = echo_instances()
        check_eq(len(instances), 1, f"the session's instance is listed: {instances}")
        instance_pid = instances[0]["pid"]

        # systemctl reload: RELOADING=1 ... READY=1 around usherd's reload; the session goes on.
        bed.inside("systemctl", "reload", bed.UNIT, timeout=60)
        journal.wait(from_usherd(pid, "reload "), 30, "usherd's reload line")
        session.echo("after reload", "the session goes on across systemctl reload")
        check_eq(main_pid(), pid, "a reload keeps the process")

        # systemctl restart: a new usherd adopts the sockets and the running instance.
        bed.inside("systemctl", "restart", bed.UNIT, timeout=90)
        new_pid = main_pid()
        check(new_pid != pid, f"a new usherd after the restart ({pid} -> {new_pid})")
        journal.wait(from_usherd(new_pid, "adopt listeners=2 passed by the service manager"), 30,
                     "the restarted usherd adopting the sockets again")
        session.echo("after restart", "the session goes on across systemctl restart")
        instances = echo_instances()
        check_eq([i["pid"] for i in instances], [instance_pid],
                 f"the restarted usherd lists the running instance: {instances}")

        # Stopped: systemd still holds the sockets; a client is queued and starts usherd.
        bed.inside("systemctl", "stop", bed.UNIT, timeout=60)
        check_eq((state(SOCKET_UNIT), state(bed.UNIT)), ("active", "inactive"),
                 "usherd stopped, its socket still held by systemd")
        session.echo("while stopped", "the session outlives usherd itself")
        late = Session()
        try:
            late.echo("queued", "a connection made while usherd was stopped is served")
        finally:
            late.close()
        check_eq(state(bed.UNIT), "active", "systemd started usherd again for it")
        session.echo("last", "the first session still goes on")
        session.close()
        session = None

        bed.inside("systemctl", "stop", SOCKET_UNIT, bed.UNIT, timeout=60)
        check_eq((state(SOCKET_UNIT), state(bed.UNIT)), ("inactive", "inactive"), "all stopped")
        print(f"usherd pids {pid} -> {new_pid}; echo instance {instance_pid} served across "
              "reload, restart and stop")
    finally:
        if session is not None:
            session.proc.kill()
            session.proc.wait()
        journal.close()
        uninstall()


if __name__ == "__main__":
    harness.main(globals())

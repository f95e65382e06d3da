#!/usr/bin/python3
"""Debian 12's own ssh.socket + ssh.service (Accept=no, sshd -D, Type=notify) under usherd.

The unit files are the ones the openssh-server package installs, copied byte for byte; the
only addition is the drop-in an administrator would write to move the socket to a test port
(ssh.socket.d/port.conf: an empty ListenStream= clears port 22, then 127.0.0.1:0). sshd reads
Debian's own /etc/ssh/sshd_config and host keys; the test user logs in with a key placed in
its ~/.ssh/authorized_keys, as on any Debian machine.

Shown: ExecStartPre=sshd -t runs before sshd; READY=1 arrives from sshd; a pubkey login
works; after a reload (ExecReload=: sshd -t, then kill -HUP $MAINPID) logins still work and a
session opened before the reload goes on. sshd 9.2 closes its listeners before it
re-executes itself on SIGHUP and then binds the addresses of its own configuration (port 22);
usherd sees that its sockets were let go and stops that sshd (KillMode=process: sessions
stay), so the next connection starts sshd again with the sockets. Where port 22 is taken,
sshd exits 255 by itself after the reload and the same restart-on-demand follows.
"""
# ctest-resource-lock: usherdtest;run-sshd;port-22

import os
import subprocess

import harness
from harness import check, check_eq

SSHD = "/usr/sbin/sshd"
UNIT_DIR = "/lib/systemd/system"
HOST_KEYS = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key",
             "/etc/ssh/ssh_host_ecdsa_key"]


class DebianSshSetup:
    """Debian's units plus the port drop-in, and a client key authorised for the test user."""

    def __enter__(self):
        harness.require_root()
        harness.require_binaries(SSHD, "ssh", "ssh-keygen", "ss")
        for path in (f"{UNIT_DIR}/ssh.socket", f"{UNIT_DIR}/ssh.service", "/etc/ssh/sshd_config"):
            if not os.path.isfile(path):
                harness.skip(f"{path} is missing (openssh-server installs it)")
        if not any(os.path.exists(k) for k in HOST_KEYS):
            harness.skip("openssh-server's host keys are missing (its postinst makes them)")
        harness.ensure_test_user()
        self._tmp = harness.TempDir("usherd-debian-ssh.")
        t = self.dir = self._tmp.path
        harness.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{t}/clientkey"])
        self.client_key = f"{t}/clientkey"
        with open(f"{t}/clientkey.pub", encoding="utf-8") as f:
            self._key = harness.AuthorizedKey(f.read()).__enter__()

        self.units = {}
        for name in ("ssh.socket", "ssh.service"):
            with open(f"{UNIT_DIR}/{name}", encoding="utf-8") as f:
                self.units[name] = f.read()
        self.units["ssh.socket.d/port.conf"] = "[Socket]\nListenStream=\nListenStream=127.0.0.1:0\n"
        return self

    def __exit__(self, *exc):
        self._key.__exit__(*exc)
        self._tmp.__exit__(*exc)
        return False

    def client(self, port):
        return ["ssh", "-p", str(port), *harness.ssh_client_options(port, self.client_key),
                f"{harness.TEST_USER}@127.0.0.1"]

    def login(self, port, what):
        out = harness.run(self.client(port) + ["echo login-$((6*7)); id -un"]).stdout
        check_eq(out.splitlines(), ["login-42", harness.TEST_USER], what)


def open_session(setup, port):
    """An interactive-style session: a shell loop echoing what it reads, kept open."""
    proc = subprocess.Popen(setup.client(port) + ["while read l; do echo \"got $l\"; done"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return proc


def session_echo(proc, text, what):
    proc.stdin.write(f"{text}\n".encode())
    proc.stdin.flush()
    line = proc.stdout.readline().decode()  # the test's global deadline bounds the wait
    check_eq(line, f"got {text}\n", what)


def listening_on_22():
    out = harness.run(["ss", "-Hltn", "sport = :22"], check_rc=False).stdout
    return out.strip() != ""


def test_debian_ssh_units_serve_a_login_across_a_reload():
    with DebianSshSetup() as setup:
        port_22_taken = listening_on_22()
        with harness.Usherd(setup.units) as usherd:
            sock = usherd.socket_status("ssh.socket")
            check_eq(len(sock.get("listen") or []), 1, "the drop-in replaced port 22")
            port = usherd.port("ssh.socket")
            mark = usherd.log_mark()
            setup.login(port, "first login")
            usherd.wait_log(r"activate socket=ssh\.socket service=ssh\.service", start_at=mark,
                            what="activation by the first connection")
            usherd.wait_log(r"end instance=ssh\.service:ExecStartPre\[0\] .*status=exited code=0",
                            start_at=mark, what="ExecStartPre=sshd -t")
            usherd.wait_log(r"ready instance=ssh\.service after=[0-9.]+s via=notify",
                            start_at=mark, what="sshd's READY=1")
            main = usherd.socket_status("ssh.socket")
            check_eq(main.get("service_state"), "running", "ssh.service runs")

            session = open_session(setup, port)
            try:
                session_echo(session, "before", "a session opened before the reload")
                mark = usherd.log_mark()
                usherd.usherctl("reload")
                usherd.wait_log(r"reload service=ssh\.service main_pid=\d+", start_at=mark,
                                what="ExecReload= started")
                if port_22_taken:
                    usherd.wait_log(r"end instance=ssh\.service .*code=255", start_at=mark,
                                    what="sshd exiting 255 when port 22 is taken")
                else:
                    # Seen when the reload commands end or at the re-executed sshd's READY=1,
                    # whichever finds the sockets gone first.
                    usherd.wait_log(r"service=ssh\.service pid=\d+ no longer holds the listening "
                                    r"sockets of ssh\.socket", start_at=mark,
                                    what="usherd noticing sshd let its sockets go")
                    usherd.wait_log(r"end instance=ssh\.service ", start_at=mark,
                                    what="the re-executed sshd stopped")
                    check(not listening_on_22(), "no sshd left listening on port 22")
                check_eq(usherd.socket_status("ssh.socket").get("service_state"), "idle",
                         "back to watching the socket")
                mark = usherd.log_mark()
                setup.login(port, "login after the reload")
                usherd.wait_log(r"ready instance=ssh\.service after=[0-9.]+s via=notify",
                                start_at=mark, what="sshd started again with the socket")
                session_echo(session, "after", "the session opened before the reload goes on")
            finally:
                session.stdin.close()
                session.wait(timeout=20)
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")
        check(not listening_on_22() or port_22_taken, "sshd stopped with usherd")


if __name__ == "__main__":
    harness.main(globals())

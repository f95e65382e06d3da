#!/usr/bin/python3
"""OpenSSH `sshd -i` behind usherd: the classic Debian per-connection pair.

ssh.socket (Accept=yes) + ssh@.service running `sshd -i -e -f CONFIG` with
StandardInput=socket and StandardError=journal (sshd's log goes to usherd's log, not into
the SSH stream), RuntimeDirectory=sshd with RuntimeDirectoryPreserve=yes (sshd's privilege
separation directory, shared by every instance). A test user logs in with a key made by the
test; the host key, sshd_config and authorized_keys live in a 0755 directory under /run.
"""
# ctest-resource-lock: usherdtest;run-sshd

import filecmp
import os
import socket
import subprocess

import harness
from harness import check, check_eq

SSHD = "/usr/sbin/sshd"
# sshd's line for a completed authentication; X-ReadyLog= anchors it at the start of a record.
READY_LOG = (r"Accepted (publickey|password|keyboard-interactive/pam|hostbased) for [^ ]+ "
             r"from [0-9A-Fa-f.:]+(%[^ ]+)? port [0-9]+ ssh2")
DROP_MESSAGE = b"Not allowed at this time\r\n"


class SshdSetup:
    """Keys, sshd_config and units for one test, in a directory removed afterwards."""

    def __init__(self, socket_extra="", service_extra=""):
        self.socket_extra = socket_extra
        self.service_extra = service_extra

    def __enter__(self):
        harness.require_root()
        harness.require_binaries(SSHD, "ssh", "ssh-keygen")
        harness.ensure_test_user()
        self._tmp = harness.TempDir("usherd-sshd.")
        t = self.dir = self._tmp.path
        harness.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{t}/hostkey"])
        harness.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{t}/clientkey"])
        self.client_key = f"{t}/clientkey"
        os.makedirs(f"{t}/authorized_keys.d", mode=0o755)
        with open(f"{t}/clientkey.pub", encoding="utf-8") as f:
            harness.write_file(f"{t}/authorized_keys.d/{harness.TEST_USER}", f.read())
        # In sshd_config the first occurrence of a keyword wins; Port is unused with -i.
        self.config = f"{t}/sshd_config"
        harness.write_file(self.config, f"""\
HostKey {t}/hostkey
PidFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes yes
AuthorizedKeysFile {t}/authorized_keys.d/%u
AllowUsers {harness.TEST_USER}
LoginGraceTime 30
Subsystem sftp internal-sftp
UsePAM no
""")
        self.units = {
            "ssh.socket": """\
[Unit]
Description=OpenBSD Secure Shell server socket (test)

[Socket]
ListenStream=127.0.0.1:0
Accept=yes
""" + self.socket_extra,
            "ssh@.service": f"""\
[Unit]
Description=OpenBSD Secure Shell server per-connection daemon (test)

[Service]
ExecStart=-{SSHD} -i -e -f {self.config}
StandardInput=socket
StandardError=journal
RuntimeDirectory=sshd
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
""" + self.service_extra,
        }
        return self

    def __exit__(self, *exc):
        self._tmp.__exit__(*exc)
        return False

    def ssh(self, port, *command, check_rc=True):
        return harness.run(["ssh", "-p", str(port),
                            *harness.ssh_client_options(port, self.client_key),
                            f"{harness.TEST_USER}@127.0.0.1", *command], check_rc=check_rc)


def check_sshd_config(setup):
    # Validate the configuration the way ExecStartPre=sshd -t would: a broken setup should
    # fail here with sshd's own words rather than as a refused login. sshd -t needs /run/sshd.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    harness.run([SSHD, "-t", "-f", setup.config])


def test_pubkey_login_runs_a_command_through_an_sshd_i_instance():
    with SshdSetup() as setup:
        had_run_sshd = os.path.isdir("/run/sshd")
        with harness.Usherd(setup.units) as usherd:
            port = usherd.port("ssh.socket")
            out = setup.ssh(port, "echo hello-$((6*7)); id -un; echo $SSH_CONNECTION").stdout
            lines = out.splitlines()
            check_eq(lines[:2], ["hello-42", harness.TEST_USER], "command output")
            # SSH_CONNECTION is "client_ip client_port server_ip server_port": the instance
            # saw the accepted connection on its stdin, on the port usherd bound.
            check(len(lines) == 3 and lines[2].split()[2:] == ["127.0.0.1", str(port)],
                  f"SSH_CONNECTION names the listener: {lines!r}")
            if not had_run_sshd:
                check(os.path.isdir("/run/sshd"), "RuntimeDirectory=sshd created /run/sshd")
            # sshd's own log went to usherd's log (StandardError=journal), not into the stream.
            usherd.wait_log(r"Accepted publickey for " + harness.TEST_USER,
                            what="sshd's Accepted line in usherd's log")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


def test_sftp_batch_puts_and_gets_a_file_intact():
    with SshdSetup() as setup:
        check_sshd_config(setup)
        with harness.Usherd(setup.units) as usherd:
            port = usherd.port("ssh.socket")
            upload = os.path.join(setup.dir, "upload.bin")
            download = os.path.join(setup.dir, "download.bin")
            with open(upload, "wb") as f:
                f.write(os.urandom(200_000) + b"\r\n\x00end of sftp test data\n")
            batch = os.path.join(setup.dir, "batch.sftp")
            harness.write_file(batch, f"put {upload} up.bin\nls -l up.bin\n"
                                      f"get up.bin {download}\nrm up.bin\n")
            out = harness.run(["sftp", "-P", str(port),
                               *harness.ssh_client_options(port, setup.client_key),
                               "-b", batch, f"{harness.TEST_USER}@127.0.0.1"]).stdout
            check("up.bin" in out, f"sftp listed the uploaded file: {out!r}")
            check(filecmp.cmp(upload, download, shallow=False),
                  "the file read back through sftp equals the one written")
            usherd.wait_instances_gone("ssh.socket")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


def test_sshd_exiting_255_after_a_session_leaves_usherd_serving():
    with SshdSetup() as setup:
        with harness.Usherd(setup.units) as usherd:
            port = usherd.port("ssh.socket")
            mark = usherd.log_mark()
            check_eq(setup.ssh(port, "true").returncode, 0, "first session exit code")
            # Debian's sshd -i exits 255 after every normal session.
            usherd.wait_log(r"end instance=ssh@[^ ]+ pid=\d+ status=exited code=255",
                            start_at=mark, what="the first instance's end with code 255")
            status = usherd.wait_instances_gone("ssh.socket")
            sock = usherd.socket_status("ssh.socket", status)
            check_eq(harness.total_dropped(sock), 0, "connections dropped")
            check_eq(status["startups"]["current"], 0, "startups still counted")
            check_eq(sock.get("accepted"), 1, "connections accepted")
            check(usherd.alive(), "usherd still runs after the instance exited 255")
            # The listener still serves: a second session works the same way.
            out = setup.ssh(port, "echo second").stdout
            check_eq(out.strip(), "second", "second session output")
            status = usherd.wait_instances_gone("ssh.socket")
            sock = usherd.socket_status("ssh.socket", status)
            check_eq(sock.get("accepted"), 2, "connections accepted")
            check_eq(sock.get("admitted"), 2, "connections admitted")
            check_eq(usherd.port("ssh.socket"), port, "the listener kept its port")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


def read_banner(sock):
    """Reads sshd's identification line: proof that the instance runs for this connection."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(256)
        check(chunk, f"connection closed before an SSH banner; got {data!r}")
        data += chunk
    check(data.startswith(b"SSH-2.0-"), f"an SSH banner: {data!r}")
    return data


def read_to_eof(sock):
    data = b""
    while True:
        chunk = sock.recv(256)
        if not chunk:
            return data
        data += chunk


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    return sock


def instances_of(status, socket_name):
    return [i for i in status.get("instances", []) if i.get("socket") == socket_name]


def test_a_startup_lasts_until_sshd_logs_its_accepted_line_and_max_startups_bounds_it():
    socket_extra = "X-MaxStartups=1\nX-DropMessage=Not allowed at this time\\r\\n\n"
    service_extra = f"X-ReadyLog={READY_LOG}\n"
    with SshdSetup(socket_extra, service_extra) as setup:
        # Refused at once when full (the waiting room is off): sshd's own refusal, then EOF.
        with harness.Usherd(setup.units, config="[Policy]\nWaitingRoom=no\n") as usherd:
            port = usherd.port("ssh.socket")
            # An unauthenticated connection is a startup for as long as it stays.
            pending = connect(port)
            read_banner(pending)
            status = usherd.status()
            check_eq(status["startups"]["current"], 1, "startups while one client idles")
            live = instances_of(status, "ssh.socket")
            check(len(live) == 1 and live[0].get("state") == "starting",
                  f"the idle client's instance is starting: {live}")
            # X-MaxStartups=1 is full: the next connection gets sshd's own refusal and EOF.
            refused = connect(port)
            check_eq(read_to_eof(refused), DROP_MESSAGE, "what a refused client reads")
            refused.close()
            sock = usherd.socket_status("ssh.socket")
            check_eq(sock.get("dropped"), {"startups-full": 1}, "drops by reason")
            pending.close()
            status = usherd.wait_instances_gone("ssh.socket")
            check_eq(status["startups"]["current"], 0, "startups after the idle client left")

            # An authenticated session is no longer a startup: it leaves room for another.
            mark = usherd.log_mark()
            session = subprocess.Popen(
                ["ssh", "-p", str(port), *harness.ssh_client_options(port, setup.client_key),
                 f"{harness.TEST_USER}@127.0.0.1", "echo authenticated; read x; echo got-$x"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            try:
                check_eq(session.stdout.readline().strip(), "authenticated", "session start")
                usherd.wait_log(r"ready instance=ssh@\S+ .*via=log", start_at=mark,
                                what="readiness of the session's instance by its log line")
                status = usherd.status()
                check_eq(status["startups"]["current"], 0, "startups during a session")
                live = instances_of(status, "ssh.socket")
                check(len(live) == 1 and live[0].get("state") == "running"
                      and live[0].get("ready_via") == "log",
                      f"the session's instance is running, ready via its log: {live}")
                other = connect(port)
                read_banner(other)  # admitted: the budget is free again
                other.close()
                out, err = session.communicate("x\n", timeout=20)
                check_eq(out.strip(), "got-x", f"session output (stderr {err!r})")
                check_eq(session.returncode, 0, "ssh exit code")
            finally:
                if session.poll() is None:
                    session.kill()
                    session.wait()
            status = usherd.wait_instances_gone("ssh.socket")
            check_eq(status["startups"]["peak"], 1, "peak startups never exceeded the socket's")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


def test_an_ssh_session_survives_sigterm_of_usherd_and_a_new_start_adopts_it():
    with SshdSetup(service_extra=f"X-ReadyLog={READY_LOG}\n") as setup:
        with harness.Usherd(setup.units) as usherd:
            port = usherd.port("ssh.socket")
            mark = usherd.log_mark()
            session = subprocess.Popen(
                ["ssh", "-p", str(port), *harness.ssh_client_options(port, setup.client_key),
                 f"{harness.TEST_USER}@127.0.0.1",
                 'echo authenticated; while read l; do echo "got $l"; done'],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                def echo(text, what):
                    session.stdin.write(text + "\n")
                    session.stdin.flush()
                    check_eq(session.stdout.readline(), f"got {text}\n", what)

                check_eq(session.stdout.readline(), "authenticated\n", "session start")
                usherd.wait_log(r"ready instance=ssh@\S+ .*via=log", start_at=mark,
                                what="the session's sshd authenticated")
                pending = connect(port)  # never authenticates: still starting at SIGTERM
                read_banner(pending)
                check_eq(usherd.stop(), 0, "usherd exit code on SIGTERM")
                read_to_eof(pending)  # EOF (a timeout fails): the unauthenticated sshd stopped
                pending.close()
                echo("while usherd is down", "the session works with usherd stopped")

                usherd.restart()
                usherd.wait_log(r"adopt instances=1 ", what="re-adoption of the session")
                live = instances_of(usherd.status(), "ssh.socket")
                check(len(live) == 1 and live[0].get("state") == "running" and live[0]["adopted"],
                      f"the session's sshd is adopted as running: {live}")
                echo("after the restart", "the session works after the new start")
                # The listener is bound anew (port 0 here: a new port).
                out = setup.ssh(usherd.port("ssh.socket"), "echo new-login").stdout
                check_eq(out.strip(), "new-login", "a new login through the new usherd")
                session.stdin.close()
                check_eq(session.wait(timeout=20), 0, "the session's ssh exit code")
            finally:
                if session.poll() is None:
                    session.kill()
                    session.wait()
            usherd.wait_instances_gone("ssh.socket")
            check_eq(usherd.stop(), 0, "usherd exit code after SIGTERM")


if __name__ == "__main__":
    harness.main(globals())

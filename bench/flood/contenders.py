"""The flood benchmark's server side: one OpenSSH configuration with slow authentication, and
each contender that puts it on a loopback port, configured as its own documentation
recommends for the job with the limits written out (see bench/flood/RESULTS.md).

Slow authentication: keys come only from an AuthorizedKeysCommand that sleeps first
(AKC_DELAY_S), as a directory service under load does. OpenSSH asks it twice per pubkey login
(the key query, then the signed request), so an unloaded login takes about twice that.

Every contender runs as a child of the benchmark (no daemonizing), so procs.end_tree ends it
and everything it started.

Standard library only.
"""

import os
import random
import shutil
import socket
import subprocess
import time

import procs

SSHD = "/usr/sbin/sshd"
USER = "usherdflood"
AKC_DELAY_S = 1
ADMIN_NET = "127.0.0.9/32"
# sshd's line for a completed authentication: usherd's readiness (X-ReadyLog=), anchored at
# the start of one of sshd's log writes, as in examples/units/ssh@.service.
READY_LOG = (r"Accepted (publickey|password|keyboard-interactive/pam|hostbased) for [^ ]+ "
             r"from [0-9A-Fa-f.:]+(%[^ ]+)? port [0-9]+ ssh2")


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


class Limits:
    """The numbers every contender is given where it has a knob for them."""

    def __init__(self, max_startups="10:30:100", per_source=10, instances=100,
                 reclaim_stalled_s=5):
        self.max_startups = max_startups
        self.per_source = per_source
        self.instances = instances
        self.reclaim_stalled_s = reclaim_stalled_s  # usherd only: nothing else has it
        self.full = int(max_startups.split(":")[-1])


class SshdSetup:
    """Host key, client key, the slow AuthorizedKeysCommand and sshd_config in directory d
    (under /run, 0755, root's: sshd checks the command's path like StrictModes)."""

    def __init__(self, d, limits):
        self.dir = d
        os.chmod(d, 0o755)
        ensure_user(USER)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hostkey"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/clientkey"])
        self.client_key = f"{d}/clientkey"
        shutil.copy(f"{d}/clientkey.pub", f"{d}/authorized_keys")
        os.chmod(f"{d}/authorized_keys", 0o644)
        write(f"{d}/akc", akc_script(d), 0o755)
        self.config = f"{d}/sshd_config"
        write(self.config, self.config_text(d, limits))

    @staticmethod
    def config_text(d, limits, extra=""):
        # The first occurrence of a keyword wins; MaxStartups and PerSource* only matter to
        # sshd's own listener (sshd -i sees one connection).
        return f"""\
HostKey {d}/hostkey
PidFile none
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
AuthorizedKeysCommand {d}/akc %u
AuthorizedKeysCommandUser nobody
AllowUsers {USER}
LoginGraceTime 120
MaxStartups {limits.max_startups}
PerSourceMaxStartups {limits.per_source}
PerSourceNetBlockSize 32:128
{extra}"""


def akc_script(d):
    """The slow directory service: AKC_DELAY_S per lookup. With a file d/slots holding N, it
    serves at most N lookups at a time, the others queueing on N lock files (a directory
    server with a small connection pool): where every connection gets its own sshd, the
    lookups of a herd pile up behind the pool until logins pass their deadline."""
    return (f"#!/bin/sh\n# A slow directory service.\n"
            f"if [ -s {d}/slots ]; then\n"
            f"  exec 9>{d}/slot.$(( $$ % $(cat {d}/slots) ))\n"
            f"  flock 9\n"
            f"fi\n"
            f"sleep {AKC_DELAY_S}\nexec cat {d}/authorized_keys\n")


def limit_directory(d, slots):
    """Makes the directory service of d serve at most slots lookups at a time (0: no limit)."""
    for name in directory_slot_files(d):
        os.unlink(os.path.join(d, name))
    if slots:
        for i in range(slots):
            write(f"{d}/slot.{i}", "", 0o666)  # the command runs as nobody
        write(f"{d}/slots", f"{slots}\n")


def directory_slot_files(d):
    return sorted(n for n in os.listdir(d) if n == "slots" or n.startswith("slot."))


def ensure_user(name):
    """A login user with no password (sshd with UsePAM no refuses a locked '!' account)."""
    if subprocess.run(["id", "-u", name], capture_output=True).returncode != 0:
        run(["useradd", "-m", "-s", "/bin/sh", name])
    run(["usermod", "-p", "*", name])


def write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def free_port():
    """A free loopback port below the ephemeral range: a port from that range could be taken,
    between the check and the bind, as the source port of one of the floods' connections."""
    first_ephemeral = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for port in random.sample(range(10000, max(10200, first_ephemeral)), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port")


def wait_for_banner(port, proc, timeout_s=15.0):
    """Waits until the port answers with an SSH identification line (the contender serves)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no SSH banner on port {port} within {timeout_s}s")


class Contender:
    """Base: name, a one-line description of its limits, start() and stop()."""

    name = "?"
    limits_text = ""
    per_connection = True   # an sshd -i per connection (a super-server), not sshd's listener

    def __init__(self, setup, limits, workdir, build_dir):
        self.setup, self.limits, self.dir, self.build_dir = setup, limits, workdir, build_dir
        os.makedirs(workdir, exist_ok=True)
        self.proc = None
        self.port = None
        self.log = None

    def available(self):
        """None when it can run here, else why not."""
        return None

    def command(self):
        raise NotImplementedError

    def start(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation
        self.port = free_port()
        self.prepare()
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for_banner(self.port, self.proc)

    def prepare(self):
        """Writes configuration files for self.port."""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def status(self):
        """Whatever the contender reports about itself after an attack (usherd: its status)."""
        return None

    def stop(self):
        """Ends it and everything it started; returns the pids that survived (none)."""
        left = procs.end_tree(self.proc) if self.proc else []
        if self.log:
            self.log.close()
        self.cleanup()
        return left

    def cleanup(self):
        """Undoes what prepare() did outside self.dir."""

    def config_files(self):
        """{name: text} of the configuration written for the run (the report shows them)."""
        return {}


class Usherd(Contender):
    name = "usherd"
    limits_text = None  # set from the limits

    def __init__(self, *args):
        super().__init__(*args)
        self.usherd = os.path.join(self.build_dir, "supervisor", "usherd")
        self.usherctl = os.path.join(self.build_dir, "supervisor", "usherctl")
        lim = self.limits
        self.limits_text = (f"MaxStartups={lim.max_startups}, PerSourceMaxStartups="
                            f"{lim.per_source}, ExemptSources={ADMIN_NET}, ReservedStartups=2, "
                            "default penalties, StartupTimeoutSec=120, MaxConnections=64, "
                            "DeferAcceptSec=3s, "
                            "WaitingRoom=yes (default bounds), ReclaimStalledSec="
                            f"{lim.reclaim_stalled_s:g}s")

    def available(self):
        if not os.access(self.usherd, os.X_OK):
            return f"{self.usherd} is not built"
        return None

    def prepare(self):
        units = os.path.join(self.dir, "units")
        os.makedirs(units, exist_ok=True)
        self.files = {
            "ssh.socket": f"""\
[Socket]
ListenStream=127.0.0.1:{self.port}
Accept=yes
# An ssh client sends its identification line at once: a connection that has said nothing
# waits in the kernel, and one that leaves without a word reaches usherd already closed.
DeferAcceptSec=3s
X-DropMessage=Not allowed at this time\\r\\n
""",
            "ssh@.service": f"""\
[Service]
ExecStart=-{SSHD} -i -e -f {self.setup.config}
StandardInput=socket
StandardError=journal
X-ReadyLog={READY_LOG}
RuntimeDirectory=sshd
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
""",
            "usherd.conf": f"""\
[Policy]
MaxStartups={self.limits.max_startups}
PerSourceMaxStartups={self.limits.per_source}
PerSourceNetBlockSize=32:128
StartupTimeoutSec=120
ExemptSources={ADMIN_NET}
ReservedStartups=2
PerSourcePenalties=
WaitingRoom=yes
ReclaimStalledSec={self.limits.reclaim_stalled_s:g}s
""",
        }
        for name, text in self.files.items():
            write(os.path.join(self.dir if name.endswith(".conf") else units, name), text)

    def command(self):
        return [self.usherd, "--units", os.path.join(self.dir, "units"),
                "--config", os.path.join(self.dir, "usherd.conf"),
                "--runtime-dir", os.path.join(self.dir, "runtime"), "--log-level", "info"]

    def status(self):
        out = subprocess.run([self.usherctl, "--runtime-dir", os.path.join(self.dir, "runtime"),
                              "status", "--json"], capture_output=True, text=True, timeout=15)
        import json
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None

    def config_files(self):
        return self.files


class SshdListener(Contender):
    name = "sshd"
    per_connection = False

    def __init__(self, *args):
        super().__init__(*args)
        lim = self.limits
        self.limits_text = (f"MaxStartups {lim.max_startups}, PerSourceMaxStartups "
                            f"{lim.per_source}, LoginGraceTime 120; no admin reservation "
                            "(OpenSSH has none)")

    def command(self):
        return [SSHD, "-D", "-e", "-f", self.setup.config, "-o",
                f"ListenAddress=127.0.0.1:{self.port}"]


class Xinetd(Contender):
    name = "xinetd"

    def __init__(self, *args):
        super().__init__(*args)
        self.limits_text = (f"instances = {self.limits.instances}, per_source = "
                            f"{self.limits.per_source}, cps = 50 10 (its default)")

    def available(self):
        return None if shutil.which("xinetd") else "xinetd is not installed"

    def prepare(self):
        self.files = {"xinetd.conf": f"""\
defaults
{{
}}
service flood-ssh
{{
    type        = UNLISTED
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = root
    server      = {SSHD}
    server_args = -i -f {self.setup.config}
    port        = {self.port}
    bind        = 127.0.0.1
    flags       = REUSE
    log_type    = FILE {self.dir}/service.log
    instances   = {self.limits.instances}
    per_source  = {self.limits.per_source}
    cps         = 50 10
}}
"""}
        write(os.path.join(self.dir, "xinetd.conf"), self.files["xinetd.conf"])

    def command(self):
        return ["xinetd", "-dontfork", "-f", os.path.join(self.dir, "xinetd.conf"),
                "-filelog", os.path.join(self.dir, "daemon.log")]

    def config_files(self):
        return self.files


class SocketActivate(Contender):
    name = "ssa"
    limits_text = "none: systemd-socket-activate has no connection limit"

    def available(self):
        return None if shutil.which("systemd-socket-activate") else "systemd is not installed"

    def command(self):
        return ["systemd-socket-activate", "--inetd", "--accept", "-l",
                f"127.0.0.1:{self.port}", SSHD, "-i", "-f", self.setup.config]


class Tcpsvd(Contender):
    name = "tcpsvd"

    def __init__(self, *args):
        super().__init__(*args)
        self.binary = os.path.join(self.build_dir, "bench-peers", "tcpsvd", "tcpsvd")
        self.limits_text = (f"-c {self.limits.instances} -C {self.limits.per_source} "
                            "(backlog -b 20, its default)")

    def available(self):
        return None if os.access(self.binary, os.X_OK) else f"{self.binary} is not built"

    def command(self):
        return [self.binary, "-c", str(self.limits.instances), "-C",
                str(self.limits.per_source), "127.0.0.1", str(self.port),
                SSHD, "-i", "-f", self.setup.config]


class Sshd10Listener(SshdListener):
    """OpenSSH 10 (Debian 13) as its own listener, with PerSourcePenalties (9.8 on), run from
    a Debian 13 root (scripts/debian13-root.sh builds one) under chroot. The root is never
    written: an overlay mount puts the run's files (user, keys, configuration) in an upper
    layer under the run's directory, removed afterwards."""

    name = "sshd10"

    def __init__(self, *args):
        super().__init__(*args)
        source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.root = os.path.realpath(os.environ.get(
            "USHERD_DEBIAN13_ROOT", os.path.join(source, "build", "debian13-root")))
        self.merged = os.path.join(self.dir, "merged")
        self.mounts = []
        lim = self.limits
        self.limits_text = (f"MaxStartups {lim.max_startups}, PerSourceMaxStartups "
                            f"{lim.per_source}, LoginGraceTime 120, PerSourcePenalties at their "
                            f"defaults, PerSourcePenaltyExemptList {ADMIN_NET}; no admin "
                            "reservation (OpenSSH has none)")

    def available(self):
        if not os.access(os.path.join(self.root, "usr/sbin/sshd"), os.X_OK):
            return f"no Debian 13 root at {self.root} (USHERD_DEBIAN13_ROOT)"
        return None

    def prepare(self):
        upper, work = os.path.join(self.dir, "upper"), os.path.join(self.dir, "work")
        for d in (upper, work, self.merged):
            os.makedirs(d, exist_ok=True)
        self._mount(["-t", "overlay", "overlay", "-o",
                     f"lowerdir={self.root},upperdir={upper},workdir={work}", self.merged])
        self._mount(["-t", "proc", "proc", os.path.join(self.merged, "proc")])
        self._mount(["--bind", "/dev", os.path.join(self.merged, "dev")])
        inside = os.path.join(self.merged, "flood")
        os.makedirs(inside, mode=0o755, exist_ok=True)
        os.chmod(inside, 0o755)
        for name in ("hostkey", "authorized_keys", "akc", *directory_slot_files(self.setup.dir)):
            shutil.copy2(os.path.join(self.setup.dir, name), inside)
        write(os.path.join(inside, "akc"), akc_script("/flood"), 0o755)
        os.makedirs(os.path.join(self.merged, "run/sshd"), mode=0o755, exist_ok=True)
        if subprocess.run(["chroot", self.merged, "id", "-u", USER],
                          capture_output=True).returncode != 0:
            run(["chroot", self.merged, "useradd", "-m", "-s", "/bin/sh", USER])
        run(["chroot", self.merged, "usermod", "-p", "*", USER])
        self.config_inside = "/flood/sshd_config"
        self.files = {"sshd_config.openssh10": SshdSetup.config_text(
            "/flood", self.limits, f"PerSourcePenaltyExemptList {ADMIN_NET}\n")}
        write(os.path.join(inside, "sshd_config"), self.files["sshd_config.openssh10"])

    def _mount(self, argv):
        run(["mount", *argv])
        self.mounts.append(argv[-1])

    def command(self):
        return ["chroot", self.merged, "/usr/sbin/sshd", "-D", "-e", "-f", "/flood/sshd_config",
                "-o", f"ListenAddress=127.0.0.1:{self.port}"]

    def cleanup(self):
        for target in reversed(self.mounts):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)
        self.mounts = []

    def config_files(self):
        return self.files


ALL = {c.name: c for c in (Usherd, SshdListener, Sshd10Listener, Xinetd, SocketActivate, Tcpsvd)}

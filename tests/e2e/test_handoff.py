#!/usr/bin/python3
"""fd hygiene at every handoff, audited through the real daemon.

usherd is started by a launcher that makes its environment as hostile as a real host can be:
300 extra inherited fds without close-on-exec, SIGUSR2 and SIGPIPE ignored, a variable that
must not leak, and the highest hard RLIMIT_NOFILE this machine allows. A probe program spawned
per connection, both with the connection on stdin/stdout (StandardInput=socket) and as
LISTEN_FDS fd 3, reports what it inherited; it must see exactly its own fds, soft NOFILE 1024
and hard at most 524288, an empty signal mask, nothing ignored, its own session and none of
usherd's variables.

Then the seed incident in miniature: a probe that raises its soft limit to its hard one and
closes every fd up to it one by one (OpenSSH's fallback in a chroot without /proc). Under
usherd its hard limit is capped, so the loop is short; the figure is printed next to the one
at usherd's own limit.
"""

import os
import resource
import socket

import harness
from harness import check, check_eq

HELPERS = os.path.join(harness.build_dir(), "tests", "helpers")
FD_PROBE = os.path.join(HELPERS, "fd_probe")
CLOSE_ALL = os.path.join(HELPERS, "close_all")
SECRET = "USHERD_TEST_SECRET_MUST_NOT_LEAK"


class HostileUsherd(harness.Usherd):
    """usherd behind a launcher holding extra non-CLOEXEC fds and ignored signals."""

    def argv(self):
        launcher = (
            "trap '' USR2 PIPE; "
            "i=100; while [ $i -lt 400 ]; do eval \"exec $i</dev/null\"; i=$((i+1)); done; "
            f"export {SECRET}=1; exec \"$@\"")
        return ["/bin/bash", "-c", launcher, "launcher"] + super().argv()


def read_all(sock, limit=1 << 20):
    data = b""
    sock.settimeout(20)
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def parse_report(text):
    report = {"fds": {}, "env": {}}
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "fd":
            fd, _, flags = rest.partition(" ")
            report["fds"][int(fd)] = flags
        elif word == "env":
            k, _, v = rest.partition("=")
            report["env"][k] = v
        elif word in ("pid", "sid", "pgid", "tty", "pdeathsig", "sigblk", "sigign", "cwd", "umask"):
            report[word] = rest
        elif word == "nofile":
            soft, hard = rest.split()
            report["nofile"] = (int(soft), int(hard))
        elif word == "end":
            report["complete"] = True
    check(report.get("complete"), f"probe report is complete:\n{text}")
    return report


def check_hygiene(report, expected_fds, what):
    check_eq(sorted(report["fds"]), expected_fds, f"{what}: fds the instance holds")
    soft, hard = report["nofile"]
    check_eq(soft, 1024, f"{what}: soft RLIMIT_NOFILE")
    check(hard <= 524288, f"{what}: hard RLIMIT_NOFILE {hard} is at most 524288")
    check_eq(int(report["sigblk"], 16), 0, f"{what}: blocked signals")
    check_eq(int(report["sigign"], 16), 0, f"{what}: ignored signals")
    check_eq(report["sid"], report["pid"], f"{what}: runs in its own session")
    check_eq(report["pgid"], report["pid"], f"{what}: leads its own process group")
    check_eq(report["tty"], "0", f"{what}: has no controlling terminal")
    check_eq(report["pdeathsig"], "0", f"{what}: is not killed when usherd ends")
    check(SECRET not in report["env"], f"{what}: usherd's environment does not leak")
    check_eq(report["env"].get("REMOTE_ADDR"), "127.0.0.1", f"{what}: REMOTE_ADDR")
    check(report["env"].get("REMOTE_PORT", "").isdigit(), f"{what}: REMOTE_PORT")
    unexpected = set(report["env"]) - {"PATH", "REMOTE_ADDR", "REMOTE_PORT", "LISTEN_FDS",
                                       "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"}
    check(not unexpected, f"{what}: only the variables usherd sets, not {sorted(unexpected)}")


def units():
    return {
        "stdio.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "stdio@.service": f"[Service]\nExecStart={FD_PROBE} 1\nStandardInput=socket\n"
                          "StandardError=null\n",
        "fds.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "fds@.service": f"[Service]\nExecStart={FD_PROBE} 3\nStandardOutput=null\n",
        "closeall.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        "closeall@.service": f"[Service]\nExecStart={CLOSE_ALL}\nStandardInput=socket\n"
                             "StandardError=null\n",
    }


def probe(port):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        return read_all(s)


def test_instances_get_only_their_fds_sane_limits_and_clean_signals():
    harness.require_binaries(FD_PROBE, CLOSE_ALL)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    print(f"usherd's hard RLIMIT_NOFILE on this machine: {hard}")
    with HostileUsherd(units()) as usherd:
        pid = usherd.proc.pid
        usherd_fds = len(os.listdir(f"/proc/{pid}/fd"))
        check(usherd_fds > 300, f"usherd holds the 300 inherited fds ({usherd_fds})")
        with open(f"/proc/{pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        print(f"usherd: {line.strip()}")

        stdio = parse_report(probe(usherd.port("stdio.socket")))
        # StandardInput=socket: the connection on 0 and 1, stderr to /dev/null as asked.
        check_hygiene(stdio, [0, 1, 2], "StandardInput=socket")
        check_eq(stdio["fds"][0], "block", "O_NONBLOCK cleared on the connection")

        fds = parse_report(probe(usherd.port("fds.socket")))
        check_hygiene(fds, [0, 1, 2, 3], "LISTEN_FDS")
        check_eq(fds["env"].get("LISTEN_FDS"), "1", "LISTEN_FDS")
        check_eq(fds["env"].get("LISTEN_PID"), fds["pid"], "LISTEN_PID is the instance's pid")
        check_eq(fds["env"].get("LISTEN_FDNAMES"), "connection", "LISTEN_FDNAMES")
        check_eq(fds["fds"][3], "block", "O_NONBLOCK cleared on fd 3")

        # The seed incident: closing every fd up to the (raised) limit, one by one.
        out = probe(usherd.port("closeall.socket")).split()
        check(len(out) == 6 and out[0] == "limit", f"close_all report: {out}")
        limit, closed, elapsed_us = int(out[1]), int(out[3]), int(out[5])
        check(limit <= 524288, f"close_all saw a hard limit of {limit}, at most 524288")
        check_eq(closed, 0, "fds open beyond 0-2 in the instance")
        per_fd_us = elapsed_us / max(limit, 1)
        print(f"seed incident: closing fds one by one up to {limit} took {elapsed_us / 1000:.2f} ms "
              f"under usherd; at usherd's own limit of {hard} it would take about "
              f"{per_fd_us * hard / 1000:.1f} ms, and at 2^30 about {per_fd_us * 2**30 / 1e6:.0f} s")


def test_no_usherd_fd_or_variable_reaches_an_instance_in_10000_handoffs():
    harness.require_binaries(FD_PROBE)
    # Under sanitizers every spawn pays ASan's start-up (about 90 ms on two cores beside the
    # soak test): a tenth of the count fits the deadline there.
    default = "1000" if harness.sanitized() else "10000"
    count = int(os.environ.get("USHERD_HANDOFF_COUNT", default))
    with HostileUsherd(units()) as usherd:
        sockets = [(usherd.port("fds.socket"), [0, 1, 2, 3], "LISTEN_FDS"),
                   (usherd.port("stdio.socket"), [0, 1, 2], "StandardInput=socket")]
        for i in range(count):
            port, expected_fds, how = sockets[i % 2]
            check_hygiene(parse_report(probe(port)), expected_fds, f"handoff {i} ({how})")
        print(f"{count} handoffs from a usherd holding 300 inherited fds and {SECRET}: "
              "not one passed an fd or a variable of usherd's")



def titled_processes():
    """Pids of processes whose command line is usherd's title ("usherd: N of ... startups")."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read(8) == b"usherd: ":
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_only_usherd_itself_carries_its_title_between_connections():
    """ps shows one process titled as the daemon: no child usherd keeps beside it (a process
    cloned ahead for the next connection would share usherd's memory, and so its title)."""
    harness.require_binaries(FD_PROBE)
    with HostileUsherd(units()) as usherd:
        port = usherd.port("fds.socket")
        for _ in range(20):
            check_hygiene(parse_report(probe(port)), [0, 1, 2, 3], "instance")
        usherd.wait_instances_gone("fds.socket")
        mine = [pid for pid in titled_processes()
                if pid == usherd.proc.pid or
                open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1] ==
                str(usherd.proc.pid)]
        check_eq(mine, [usherd.proc.pid], "processes titled as this usherd (itself and children)")

if __name__ == "__main__":
    # 10,000 handoffs take 70-80 s on two cores beside another test: more than the default
    # 90 s leaves when the machine is busy. This script alone gets 200 s (CTest allows 300).
    if "USHERD_E2E_TEST_TIMEOUT" not in os.environ:
        harness.TEST_TIMEOUT_S = 200.0
    harness.main(globals())

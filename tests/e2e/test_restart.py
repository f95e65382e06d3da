#!/usr/bin/python3
"""usherd stops and starts without taking sessions down or forgetting its budget.

SIGTERM leaves running per-connection instances alone (an ssh session survives a restart of
its super-server) and stops the ones still starting; a usherd started again re-adopts the
survivors from RUNTIME/state. After a SIGKILL in the middle of a burst of starting
instances, the new usherd counts those instances in its startup budget at once. An adopted
instance whose readiness would come through its X-ReadyLog= capture (which died with the
old usherd) is never timed out for it: its startup ends as "unknown", and the login goes on."""

import os
import re
import select
import signal
import socket

import harness
from harness import check, check_eq

USHERCTL = harness.usherctl_binary()

UNITS = {
    "login.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
    "login@.service": f"""\
[Service]
Type=notify
ExecStart=/bin/sh -c 'read line; {USHERCTL} notify --ready; echo ready; while read l; do echo "got $l"; done'
StandardInput=socket
StandardError=journal
""",
}


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, s.makefile("rwb", buffering=0)


def readline(f):
    return f.readline().decode()


def test_a_ready_session_survives_sigterm_and_is_readopted():
    with harness.Usherd(UNITS) as usherd:
        port = usherd.port("login.socket")
        s, f = connect(port)
        f.write(b"auth\n")
        check_eq(readline(f), "ready\n", "session authenticated")
        pending, _ = connect(port)  # never authenticates: still starting at SIGTERM
        status = usherd.status()
        check_eq(len(status["instances"]), 2, "two instances")
        check_eq(usherd.stop(), 0, "usherd exit code on SIGTERM")

        f.write(b"ping\n")
        check_eq(readline(f), "got ping\n", "the session still works with usherd stopped")
        check_eq(pending.recv(100), b"", "the unauthenticated instance was stopped")
        pending.close()

        usherd.restart()
        usherd.wait_log(r"adopt instances=1 ", what="re-adoption line")
        status = usherd.status()
        check_eq([i["state"] for i in status["instances"]], ["running"], "the session is adopted")
        check(status["instances"][0]["adopted"], "marked adopted")
        f.write(b"again\n")
        check_eq(readline(f), "got again\n", "the session works after the restart")
        f.close()
        s.close()
        usherd.wait_instances_gone("login.socket")
        usherd.wait_log(r"end instance=login@.* status=unknown", what="end of the adopted instance")


def test_sigkill_during_a_burst_keeps_the_starting_instances_counted():
    with harness.Usherd(UNITS) as usherd:
        port = usherd.port("login.socket")
        burst = [connect(port) for _ in range(6)]
        for _ in range(6):
            usherd.wait_log(r"accept socket=login\.socket", start_at=0)
        deadline_status = usherd.status()
        check_eq(deadline_status["startups"]["current"], 6, "six startups before the kill")
        usherd.proc.send_signal(signal.SIGKILL)
        usherd.proc.wait(timeout=10)
        usherd._reader.join(timeout=5)

        usherd.restart()
        status = usherd.status()
        check_eq(status["startups"]["current"], 6, "the new usherd counts the six startups")
        check_eq(len(status["instances"]), 6, "and lists them")
        # Authenticating one of them ends its startup in the new usherd's budget too.
        s, f = burst[0]
        f.write(b"auth\n")
        check_eq(readline(f), "ready\n", "an adopted instance can still become ready")
        for s, f in burst:
            f.close()
            s.close()
        status = usherd.wait_instances_gone("login.socket")
        check_eq(status["startups"]["current"], 0, "every startup released")


READY_LOG_UNITS = {
    "login.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nX-StartupTimeoutSec=2\n",
    "login@.service": """\
[Service]
ExecStart=/bin/sh -c 'read line; echo "Accepted key for $line" >&2; echo ready; while read l; do echo "got $l"; done'
StandardInput=socket
X-ReadyLog=^Accepted
""",
}


def test_an_adopted_login_whose_ready_log_was_lost_is_not_killed_for_it():
    with harness.Usherd(READY_LOG_UNITS) as usherd:
        port = usherd.port("login.socket")
        s, f = connect(port)
        usherd.wait_log(r"accept socket=login\.socket", start_at=0)
        check_eq(usherd.status()["startups"]["current"], 1, "one login starting")
        usherd.proc.send_signal(signal.SIGKILL)
        usherd.proc.wait(timeout=10)
        usherd._reader.join(timeout=5)

        usherd.restart()
        usherd.wait_log(r"adopt instance=login@\S+ pid=\d+: its X-ReadyLog= capture did not "
                        r"survive the restart; startup ended as unknown")
        status = usherd.status()
        check_eq(status["startups"]["current"], 0, "its startup ended")
        check_eq(status["startups_unknown"], 1, "counted as unknown")
        check_eq(status["instances"][0]["state"], "running", "the adopted login runs on")
        check_eq(status["instances"][0]["ready_via"], "unknown", "readiness unknown")
        check("usherd_startups_unknown_total 1" in usherd.usherctl("metrics").stdout,
              "the metric counts it")
        # The user authenticates after the restart: the login completes.
        f.write(b"alice\n")
        check_eq(readline(f), "ready\n", "the login completes")
        f.write(b"ls\n")
        check_eq(readline(f), "got ls\n", "the session works")
        check("timeout instance=" not in usherd.log_text(), "nothing timed out")
        f.close()
        s.close()
        usherd.wait_instances_gone("login.socket")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_exited(pid, timeout=20):
    """Waits for pid to exit (its pidfd becomes readable); no-op if it is gone already."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        check(readable, f"pid {pid} still running after {timeout}s")
    finally:
        os.close(fd)


def instance_of(status, client_socket):
    """The status entry of the instance serving client_socket (matched by its peer port)."""
    peer = "127.0.0.1:%d" % client_socket.getsockname()[1]
    return next(i for i in status["instances"] if i["peer"] == peer)


def test_sigkill_with_sessions_running_rebinds_readopts_serves_and_says_what_it_missed():
    port = free_port()
    units = dict(UNITS)
    units["login.socket"] = f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"
    with harness.Usherd(units) as usherd:
        ending, surviving = connect(port), connect(port)
        for s, f in (ending, surviving):
            f.write(b"auth\n")
            check_eq(readline(f), "ready\n", "session authenticated")
        starting = connect(port)
        usherd.wait_log(rf"accept socket=login\.socket peer=127\.0\.0\.1:"
                        rf"{starting[0].getsockname()[1]} ", what="the third accept")
        status = usherd.status()
        check_eq(instance_of(status, starting[0])["state"], "starting", "a login in progress")
        ending_pid = instance_of(status, ending[0])["pid"]
        starting_pid = instance_of(status, starting[0])["pid"]

        usherd.proc.send_signal(signal.SIGKILL)
        usherd.proc.wait(timeout=10)
        usherd._reader.join(timeout=5)
        # While usherd is down one session ends (usherd cannot learn its exit status), and
        # nobody listens on the port.
        ending[1].close()
        ending[0].close()
        wait_exited(ending_pid)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        check(refused, "no listener while usherd is down")

        usherd.restart()  # the log starts afresh
        check_eq(usherd.port("login.socket"), port, "usherd bound the same address again")
        adopt = [l for l in usherd.log_text().splitlines() if "adopt instances=" in l]
        check_eq(len(adopt), 1, f"one line about the adoption: {adopt}")
        check(re.search(r"adopt instances=2 .*; 1 ended while usherd was not running", adopt[0]),
              f"it says what it could not know: {adopt[0]}")
        status = usherd.status()
        check_eq(instance_of(status, surviving[0])["state"], "running", "the session adopted")
        adopted_login = instance_of(status, starting[0])
        check_eq((adopted_login["state"], adopted_login["pid"]), ("starting", starting_pid),
                 "the login in progress adopted")
        check(all(i["adopted"] for i in status["instances"]), "marked adopted")
        check_eq(len(status["instances"]), 2, "nothing else listed")
        check_eq(status["startups"]["current"], 1, "the login in progress still counts")

        # The surviving session works; the login in progress completes; new logins work.
        surviving[1].write(b"ping\n")
        check_eq(readline(surviving[1]), "got ping\n", "the surviving session works")
        starting[1].write(b"auth\n")
        check_eq(readline(starting[1]), "ready\n", "the adopted login becomes ready")
        fresh = connect(port)
        fresh[1].write(b"auth\n")
        check_eq(readline(fresh[1]), "ready\n", "a new login is served")
        for s, f in (surviving, starting, fresh):
            f.close()
            s.close()
        status = usherd.wait_instances_gone("login.socket")
        check_eq(status["startups"]["current"], 0, "every startup released")
        ends = [l for l in usherd.log_text().splitlines() if "end instance=" in l]
        check_eq(sum("status=unknown" in l for l in ends), 2,
                 f"the adopted instances end with an unknown status: {ends}")


if __name__ == "__main__":
    harness.main(globals())

#!/usr/bin/python3
"""usherd stops and starts without taking sessions down or forgetting its budget.

SIGTERM leaves running per-connection instances alone (an ssh session survives a restart of
its super-server) and stops the ones still starting; a usherd started again re-adopts the
survivors from RUNTIME/state. After a SIGKILL in the middle of a burst of starting
instances, the new usherd counts those instances in its startup budget at once."""

import os
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


if __name__ == "__main__":
    harness.main(globals())

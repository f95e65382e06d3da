#!/usr/bin/python3
"""The global startup budget, end to end.

Three sockets share one MaxStartups=4:50:8. Each instance is a small "login" that becomes
ready only when the client says "auth" (it then runs `usherctl notify --ready`, whose
credentials name the instance's main process, as systemd-notify's do). Clients that connect
and never authenticate fill the budget: the number of instances in startup never exceeds
full (startups.peak proves it), drops are counted by reason, an ExemptSources= address still
gets in on the reserved slots, a READY=1 from a process outside every instance is ignored
and counted, and once the flood drains ordinary logins work again. A slowloris client is
stopped by the startup timeout and its source is penalised.
"""

import os
import socket
import time

import harness
from harness import check, check_eq

USHERCTL = harness.usherctl_binary()


def login_service():
    return f"""\
[Service]
Type=notify
ExecStart=/bin/sh -c 'echo hello; read line; if [ "$line" = auth ]; then {USHERCTL} notify --ready; echo ready; fi; read rest'
StandardInput=socket
StandardError=journal
"""


def units(extra_socket=""):
    u = {}
    for name in ("a", "b", "c"):
        u[f"{name}.socket"] = f"[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n{extra_socket}"
        u[f"{name}@.service"] = login_service()
    return u


def connect(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def login(port, source="127.0.0.1"):
    """Authenticates; True when the instance answered "ready"."""
    with connect(port, source) as s:
        s.sendall(b"auth\n")
        data = b""
        while not data.endswith(b"ready\n"):
            try:
                chunk = s.recv(100)
            except ConnectionError:
                break
            if not chunk:
                break
            data += chunk
        return data == b"hello\nready\n"


def greeted(s):
    """True when an instance greeted the connection, False when usherd dropped it (EOF or
    reset): every connection ends in exactly one of the two events."""
    data = b""
    try:
        while len(data) < 6:
            chunk = s.recv(6 - len(data))
            if not chunk:
                return False
            data += chunk
    except ConnectionError:
        return False
    return data == b"hello\n"


def test_flood_never_exceeds_full_and_exempt_sources_get_in():
    # Random early drop, as OpenSSH's listener does it (the waiting room is off here).
    config = ("[Policy]\nMaxStartups=4:50:8\nExemptSources=127.0.0.9/32\nReservedStartups=2\n"
              "WaitingRoom=no\n")
    with harness.Usherd(units(), config=config) as usherd:
        ports = [usherd.port(f"{n}.socket") for n in ("a", "b", "c")]
        check(login(ports[0]), "a login works before the flood")

        # Connect until the budget is full: each connection is greeted by an instance (a
        # startup) or dropped by usherd; early drop is random, so the count is bounded, not
        # fixed.
        flood, refused, refused_at_full = [], 0, 0
        for i in range(300):
            full = len(flood) == 8
            s = connect(ports[i % 3])
            if greeted(s):
                flood.append(s)
            else:
                s.close()
                refused += 1
                refused_at_full += full
            if refused_at_full == 10:
                break
        check_eq(len(flood), 8, "instances admitted before the budget was full")
        status = usherd.status()
        check(status["startups"]["peak"] <= 8, f"peak startups {status['startups']['peak']} <= full 8")
        check_eq(status["startups"]["current"], 8, "the flood holds the whole budget")
        drops = {}
        for s in status["sockets"]:
            for reason, n in s["dropped"].items():
                drops[reason] = drops.get(reason, 0) + n
        check(set(drops) <= {"startups-full", "startups-early-drop"}, f"drop reasons: {drops}")
        # Whether any early drop happened between start and full is chance (the curve itself
        # is checked exactly in the policy's unit tests); at full every connection is dropped.
        check_eq(drops.get("startups-full", 0), refused_at_full, f"drops at full ({drops})")
        check_eq(sum(drops.values()), refused, "every refused connection is counted")

        # A READY=1 from outside every instance's tree is ignored and counted.
        usherd.usherctl("notify", "--ready", "--own-pid", "--socket",
                        os.path.join(usherd.runtime_dir, "notify"))
        metrics = usherd.usherctl("metrics").stdout
        check("usherd_notify_rejected_total 1" in metrics, "the spoofed READY=1 is counted")
        check_eq(usherd.status()["startups"]["current"], 8, "the spoofed READY=1 ended no startup")

        # An administrator from an exempt source gets in on the reserved slots.
        check(login(ports[1], source="127.0.0.9"), "an exempt source logs in during the flood")
        # An ordinary source does not.
        extra = connect(ports[2])
        check(not greeted(extra), "an ordinary source is dropped while the budget is full")
        extra.close()

        for s in flood:
            s.close()
        status = None
        for name in ("a.socket", "b.socket", "c.socket"):
            status = usherd.wait_instances_gone(name)
        check_eq(status["startups"]["current"], 0, "startups after the flood drained")
        check(login(ports[2]), "ordinary logins work again after the flood")
        check(status["startups"]["peak"] <= 10, "peak within full + reserved")
        usherd.wait_log(r"drop connection from \[127\.0\.0\.1\]:\d+ on \[127\.0\.0\.1\]:\d+ "
                        r"socket=\w\.socket reason=startups-(full|early-drop) startups=\d+/4:50:8",
                        what="a fail2ban-shaped drop line")


def test_startup_timeout_stops_slowloris_and_penalises_its_source():
    config = "[Policy]\nPerSourcePenalties=grace-exceeded:30s min:0s\n"
    with harness.Usherd(units("X-StartupTimeoutSec=1\n"), config=config) as usherd:
        port = usherd.port("a.socket")
        mark = usherd.log_mark()
        slow = connect(port, source="127.0.0.5")
        usherd.wait_log(r"timeout instance=a@", timeout=20, start_at=mark,
                        what="the startup timeout")
        usherd.wait_instances_gone("a.socket")
        slow.close()
        again = connect(port, source="127.0.0.5")
        check(not greeted(again), "the penalised source is dropped")
        again.close()
        sock = usherd.socket_status("a.socket")
        check(sock["dropped"].get("penalty", 0) >= 1, f"penalty drop counted: {sock['dropped']}")
        check(login(port, source="127.0.0.6"), "another source still logs in")
        metrics = usherd.usherctl("metrics").stdout
        check("usherd_startup_timeouts_total 1" in metrics, "startup timeout counted")
        check("usherd_penalised_sources 1" in metrics, "one source block penalised")


def test_a_dual_stack_listener_polices_and_logs_ipv4_clients_as_ipv4():
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        harness.skip("no IPv6 on this machine")
    u = {
        "dual.socket": "[Socket]\nListenStream=0\nBindIPv6Only=both\nAccept=yes\n"
                       "IPAddressDeny=127.0.0.7\n",
        "dual@.service": login_service(),
    }
    with harness.Usherd(u) as usherd:
        listen = usherd.socket_status("dual.socket")["listen"][0]
        check(listen.startswith("[::]:"), f"bound dual-stack: {listen}")
        port = int(listen.rpartition(":")[2])
        s = connect(port, source="127.0.0.1")
        check(greeted(s), "an IPv4 client is served on the dual-stack socket")
        instance = usherd.status()["instances"][0]
        check(instance["peer"].startswith("127.0.0.1:"), f"peer unmapped: {instance['peer']}")
        check(instance["id"].startswith("dual@1-"), instance["id"])
        check("::ffff:" not in instance["id"], f"instance name unmapped: {instance['id']}")
        s.close()
        denied = connect(port, source="127.0.0.7")
        check(not greeted(denied), "IPAddressDeny= matches the unmapped IPv4 address")
        denied.close()
        check_eq(usherd.socket_status("dual.socket")["dropped"].get("acl"), 1, "acl drop")
        usherd.wait_log(r"drop connection from \[127\.0\.0\.7\]:\d+ .* reason=acl",
                        what="the drop logged with the IPv4 address")


if __name__ == "__main__":
    harness.main(globals())

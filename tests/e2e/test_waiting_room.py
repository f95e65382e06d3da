#!/usr/bin/python3
"""The waiting room: a connection the startup budget has no room for waits for a slot,
accepted and with nothing spawned, instead of being refused; slots go to source blocks in
turn; a client that hangs up while it waits is forgotten at once.

The first test is the incident this project exists for, in miniature: authentication is
slow, a herd from many addresses logs in again and again, one ordinary user and one admin
try meanwhile. It runs the same herd with the waiting room and with OpenSSH's random early
drop (WaitingRoom=no), and prints both figures.
"""

import os
import threading
import time

import harness
import loadkit
from harness import check, check_eq

AUTH_MS = 300
HERD, HERD_BLOCKS = 40, 10
ORDINARY, ADMIN = "127.0.0.2", "127.0.0.9"
HERD_S = float(os.environ.get("USHERD_ROOM_HERD_SECONDS", "6"))
DROP_MESSAGE = b"Not allowed at this time\r\n"


def policy(room, extra=""):
    return ("[Policy]\nMaxStartups=4:30:8\n"
            f"ExemptSources={ADMIN}/32\nReservedStartups=2\n"
            f"WaitingRoom={'yes' if room else 'no'}\n{extra}")


class Herd:
    """HERD clients from HERD_BLOCKS addresses in 127.0.4.0/24, each logging in again as
    soon as its last attempt ended, until stop()."""

    def __init__(self, port):
        self.port = port
        self.served = self.attempted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(HERD)]

    def _run(self, i):
        source = f"127.0.4.{i % HERD_BLOCKS + 1}"
        while not self._stop.is_set():
            try:
                ok = loadkit.login(self.port, source)
            except OSError:
                ok = False
            with self._lock:
                self.attempted += 1
                self.served += ok

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(60)
        check(not any(t.is_alive() for t in self._threads), "herd clients finished")


def herd_run(room):
    units = loadkit.slow_auth_units(delay_ms=AUTH_MS)
    with harness.Usherd(units, config=policy(room)) as usherd:
        port = usherd.port("login.socket")
        herd = Herd(port).start()
        ordinary = loadkit.Steady(port, ORDINARY, minimum=10).start()
        admin = loadkit.Steady(port, ADMIN, minimum=5).start()
        time.sleep(HERD_S)  # the length of the flood, not a wait for an event
        herd.stop()
        ordinary.stop()
        admin.stop()
        status = usherd.status()
        sock = usherd.socket_status("login.socket", status)
        figures = {
            "ordinary": (ordinary.served, ordinary.attempted),
            "admin": (admin.served, admin.attempted),
            "herd": (herd.served, herd.attempted),
            "peak": status["startups"]["peak"],
            "dropped": sock["dropped"],
            "parked_peak": status["waiting_room"]["peak"],
        }
        loadkit.wait_until(lambda: usherd.status()["startups"]["current"] == 0, 30,
                           "every startup ended")
        return figures


def test_the_herd_waits_its_turn_and_everyone_gets_in():
    harness.require_binaries(loadkit.SLOW_AUTH)
    with_room = herd_run(room=True)
    without = herd_run(room=False)
    for name, f in (("waiting room", with_room), ("random early drop", without)):
        print(f"{name}: ordinary user {f['ordinary'][0]}/{f['ordinary'][1]}, admin "
              f"{f['admin'][0]}/{f['admin'][1]}, herd {f['herd'][0]}/{f['herd'][1]}, "
              f"peak startups {f['peak']}, parked peak {f['parked_peak']}, drops {f['dropped']}")
    o_served, o_tried = with_room["ordinary"]
    check(o_served >= 0.95 * o_tried, f"ordinary user's logins with the room: {o_served}/{o_tried}")
    check_eq(with_room["admin"][0], with_room["admin"][1], "the admin's logins with the room")
    # Never more unauthenticated instances than full allows, plus the admin's reserve.
    check(with_room["peak"] <= 8 + 2, f"startups peak {with_room['peak']} <= full 8 + reserve 2")
    check(with_room["parked_peak"] > 0, "the herd did wait in the room")
    ratio = lambda f: f["ordinary"][0] / max(f["ordinary"][1], 1)  # noqa: E731
    check(ratio(with_room) >= ratio(without),
          f"the room serves the ordinary user at least as well as random early drop: "
          f"{with_room['ordinary']} vs {without['ordinary']}")


def test_a_parked_client_is_served_with_what_it_sent_or_forgotten_when_it_leaves():
    harness.require_binaries(loadkit.SLOW_AUTH)
    units = loadkit.slow_auth_units(
        delay_ms=50, socket_extra="X-DropMessage=Not allowed at this time\\r\\n\n")
    config = "[Policy]\nMaxStartups=1\nMaxParkedWait=3s\n"
    with harness.Usherd(units, config=config) as usherd:
        port = usherd.port("login.socket")
        parked = lambda: usherd.socket_status("login.socket")["parked"]  # noqa: E731
        # The one startup slot, held by a client that says nothing.
        holder = loadkit.connect(port, "127.0.0.3")
        loadkit.wait_until(lambda: usherd.status()["startups"]["current"] == 1, 20,
                           "the holder's instance starting")
        # Parked: accepted, nothing spawned. What it sends while it waits (an SSH client's
        # banner) stays in the socket for the instance that will serve it.
        waiting = loadkit.connect(port, "127.0.0.4")
        waiting.sendall(b"hello\n")
        loadkit.wait_until(lambda: parked() == 1, 20, "the second client parked")
        check_eq(len(usherd.status()["instances"]), 1, "instances while one client waits")
        # The title follows within its 100 ms rate limit.
        title = lambda: open(f"/proc/{usherd.proc.pid}/cmdline", "rb").read()  # noqa: E731
        loadkit.wait_until(lambda: b"1 of 1:30:1 startups, 1 parked, 1 instances" in title(), 5,
                           "the process title showing the parked client")
        # Another waits and leaves: forgotten at once, nothing spawned for it.
        leaver = loadkit.connect(port, "127.0.0.5")
        loadkit.wait_until(lambda: parked() == 2, 20, "the third client parked")
        leaver.sendall(b"SSH-2.0-leaving\r\n")
        leaver.close()
        loadkit.wait_until(lambda: parked() == 1, 5, "the leaver forgotten")
        check_eq(usherd.socket_status("login.socket")["abandoned"], 1, "hung up while waiting")
        # The holder leaves: its slot goes to the waiting client, which is served.
        holder.close()
        check_eq(loadkit.read_line(waiting), b"ready\n",
                 "the parked client is served, its early line read by the instance")
        waiting.close()
        # Past MaxParkedWait=, a waiting client is refused with the socket's drop message.
        holder = loadkit.connect(port, "127.0.0.3")
        loadkit.wait_until(lambda: usherd.status()["startups"]["current"] == 1, 20,
                           "the holder's instance starting again")
        late = loadkit.connect(port, "127.0.0.6")
        check_eq(loadkit.read_until_closed(late), DROP_MESSAGE, "what a timed-out client reads")
        sock = usherd.socket_status("login.socket")
        check_eq(sock["dropped"], {"queue-timeout": 1}, "drops by reason")
        holder.close()
        late.close()
        status = usherd.status()
        check_eq(status["waiting_room"]["started"], 1, "connections started from the room")
        check_eq(status["waiting_room"]["parked"], 0, "nothing left in the room")


def test_a_stalled_startup_gives_its_slot_to_a_waiting_connection():
    """DHEat in miniature: a client that connects, says a few bytes and stalls holds a startup
    slot; once a connection waits for one, the stalled startup is ended (ReclaimStalledSec=)
    and the waiting connection gets its slot, while a login in progress is left alone."""
    harness.require_binaries(loadkit.SLOW_AUTH)
    units = loadkit.slow_auth_units(delay_ms=4000)
    config = ("[Policy]\nMaxStartups=2\nReclaimStalledSec=1s\nReclaimStalledBytes=4\n"
              "MaxParkedWait=20s\n")
    with harness.Usherd(units, config=config) as usherd:
        port = usherd.port("login.socket")
        # A login in progress: its client sent its line (6 bytes); authentication takes 4 s.
        with loadkit.connect(port, "127.0.0.2") as login, \
                loadkit.connect(port, "127.0.4.1") as staller:
            login.sendall(b"hello\n")
            staller.sendall(b"hi")  # two bytes, then nothing
            loadkit.wait_until(lambda: usherd.status()["startups"]["current"] == 2, 20,
                               "both startups running")
            mark = usherd.log_mark()
            with loadkit.connect(port, "127.0.0.3") as waiting:
                waiting.sendall(b"hello\n")
                usherd.wait_log(r"reclaim instance=\S+ socket=login\.socket peer=127\.0\.4\.1:\d+ "
                                r"stalled: its client sent 2 bytes in [0-9.]+s; the startup slot "
                                r"goes to a waiting connection", start_at=mark,
                                what="the stalled startup reclaimed")
                check_eq(loadkit.read_until_closed(staller), b"", "the staller's connection closed")
                check_eq(loadkit.read_line(login), b"ready\n", "the login in progress went on")
                check_eq(loadkit.read_line(waiting), b"ready\n",
                         "the waiting connection got the slot and logged in")
        status = usherd.status()
        check_eq(status["startups_reclaimed"], 1, "one startup reclaimed")
        check("usherd_startups_reclaimed_total 1" in usherd.usherctl("metrics").stdout,
              "the metric counts it")
        dropped = usherd.socket_status("login.socket", status)["dropped"]
        check_eq(dropped, {}, "nobody was refused")
        usherd.wait_log(r"end instance=\S+-127\.0\.4\.1:\d+\.service pid=\d+ status=killed "
                        r"signal=Terminated before-ready=yes", start_at=mark,
                        what="the reclaimed instance stopped by its KillSignal=")


def test_a_startup_whose_client_hung_up_gives_its_slot_to_a_waiting_connection():
    """An instance that does not watch its connection while it works (sshd waiting for its
    AuthorizedKeysCommand) would hold its slot after its client left; while a connection waits,
    usherd ends it and the waiting connection starts."""
    units = {
        "busy.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\n",
        # Reads the client's line, then works without looking at the connection; never ready.
        "busy@.service": "[Service]\nType=notify\nExecStart=/bin/sh -c 'read line; exec sleep 60'\n"
                         "StandardInput=socket\nStandardError=null\n",
    }
    config = "[Policy]\nMaxStartups=1\nReclaimStalledSec=30s\nMaxParkedWait=20s\n"
    with harness.Usherd(units, config=config) as usherd:
        port = usherd.port("busy.socket")
        gone = loadkit.connect(port, "127.0.0.2")
        gone.sendall(b"hello\n")
        loadkit.wait_until(lambda: usherd.status()["startups"]["current"] == 1, 20,
                           "the first startup running")
        mark = usherd.log_mark()
        with loadkit.connect(port, "127.0.0.3") as waiting:
            loadkit.wait_until(lambda: usherd.status()["waiting_room"]["parked"] == 1, 20,
                               "the second connection waiting")
            gone.close()
            usherd.wait_log(r"reclaim instance=\S+ socket=busy\.socket peer=127\.0\.0\.2:\d+ its "
                            r"client hung up after [0-9.]+s, before it was ready", start_at=mark,
                            what="the startup of the client that left reclaimed")
            usherd.wait_log(r"accept socket=busy\.socket peer=127\.0\.0\.3:", start_at=mark,
                            what="the waiting connection started")
            check_eq(usherd.status()["startups_reclaimed"], 1, "one startup reclaimed")


if __name__ == "__main__":
    harness.main(globals())

#!/usr/bin/python3
"""Floods: one source block hammers a slow-auth service while other sources log in.

The service is tests/helpers/slow_auth (a login that takes DELAY_MS to authenticate, then
sends READY=1). PerSourceMaxStartups=3 is well below MaxStartups' start of 10, so the
flooding block alone can never push the global count into early drop: the other sources
(127.0.0.3 and an ExemptSources= address, one login after another) keep being served. The
flooder connects and leaves, so every instance it gets ends before readiness and its block
earns noauth penalties until it is refused outright. Short penalties (max 6 s) let the test
see the block forgiven afterwards: nothing fails permanently.

Then the same with clients that reset at once (RST storm) and with clients that connect and
send nothing (slowloris), held by the startup timeout. Last, a burst: many clients connect
at the same instant to a service that answers and holds the connection; every one is served
(usherd launches them at the pace the cores exec them, the rest wait in the accept queue).
And hundreds of held instances killed at the same moment: every end is seen and reaped.

USHERD_FLOOD_CONNECTIONS sets the flood's size (default 3000), USHERD_BURST_CONNECTIONS the
burst's (default 1500; 300 under the sanitizers, whose instances are large).
"""

import json
import os
import re
import signal
import subprocess

import harness
import loadkit
from harness import check, check_eq

FLOOD = int(os.environ.get("USHERD_FLOOD_CONNECTIONS", "3000"))
BURST = int(os.environ.get("USHERD_BURST_CONNECTIONS", "300" if harness.sanitized() else "1500"))
LOADGEN = os.path.join(harness.build_dir(), "bench", "loadgen")
OKD = os.path.join(harness.build_dir(), "bench", "okd")
FLOODER, OTHER, EXEMPT = "127.0.0.2", "127.0.0.3", "127.0.0.9"
CONFIG = (
    "[Policy]\n"
    "MaxStartups=10:30:40\n"
    "PerSourceMaxStartups=3\n"
    f"ExemptSources={EXEMPT}/32\n"
    "PerSourcePenalties=noauth:2s crash:2s grace-exceeded:2s min:4s max:6s\n")


def drop_sources(usherd):
    """The peer addresses of the drops logged in full."""
    return {m.group(1) for m in re.finditer(r"drop connection from \[([^\]]+)\]", usherd.log_text())}


def settle(usherd):
    """Waits for every instance to end and every penalty to expire; returns the status."""
    loadkit.quiescent(usherd, ["login.socket"])
    return loadkit.wait_until(
        lambda: (lambda s: s if s["penalised_sources"] == 0 else None)(usherd.status()),
        timeout=30, what="penalties expired")


def okd_units(name, hold_ms):
    """A per-connection okd that answers and holds each connection hold_ms, on a socket with
    room for thousands of connections at once."""
    return {
        f"{name}.socket": "[Socket]\nListenStream=127.0.0.1:0\nAccept=yes\nBacklog=4096\n"
                          "MaxConnections=100000\n",
        f"{name}@.service": f"[Service]\nExecStart={OKD} --hold-ms {hold_ms}\n"
                            "StandardInput=socket\n",
    }


def check_at_rest(usherd, status, fds_before):
    check_eq(status["startups"]["current"], 0, "global startups afterwards")
    check_eq(status["penalised_sources"], 0, "penalised source blocks afterwards")
    check_eq(status["instances"], [], "instances afterwards")
    sock = usherd.socket_status("login.socket", status)
    check_eq((sock["startups"], sock["instances"]), (0, 0), "socket startups and instances")
    check_eq(sock["parked"], 0, "connections in the waiting room afterwards")
    check_eq(sock["accepted"],
             sock["admitted"] + harness.total_dropped(sock) + sock["abandoned"],
             "every accepted connection is admitted, dropped, or hung up while it waited")
    check_eq(loadkit.fd_count(usherd.proc.pid), fds_before, "usherd's open fds afterwards")
    check_eq(loadkit.zombies(usherd.proc.pid), [], "zombie children of usherd")


def test_a_flood_from_one_block_leaves_the_other_sources_served():
    harness.require_binaries(loadkit.SLOW_AUTH)
    with harness.Usherd(loadkit.slow_auth_units(delay_ms=150), config=CONFIG) as usherd:
        port = usherd.port("login.socket")
        check(loadkit.login(port, OTHER), "a login works before the flood")
        loadkit.quiescent(usherd, ["login.socket"])
        fds_before = loadkit.fd_count(usherd.proc.pid)

        others = [loadkit.Steady(port, OTHER).start(), loadkit.Steady(port, EXEMPT).start()]
        flood = loadkit.Clients(lambda i: loadkit.hit_and_leave(port, FLOODER), FLOOD).start()
        flood.join(timeout=240)
        for o in others:
            o.stop()

        status = usherd.status()
        sock = usherd.socket_status("login.socket", status)
        served = sum(o.served for o in others)
        attempted = sum(o.attempted for o in others)
        peak, full, start = (status["startups"][k] for k in ("peak", "full", "start"))
        dropped = sock["dropped"]
        print(f"flood: {FLOOD} connections from {FLOODER}; other sources: {served}/{attempted} "
              f"served ({100 * served / attempted:.1f}%); startups peak {peak} (start {start}, "
              f"full {full}); admitted {sock['admitted']}, dropped {dropped}")
        for o in others:
            check(not o.errors, f"logins from {o.source} failed: {o.errors[:3]}")
            check(o.ratio() >= 0.99,
                  f"{o.source}: {o.served}/{o.attempted} logins served during the flood")
        check(peak <= full, f"startups peak {peak} <= full {full}")
        check(peak < start, f"startups peak {peak} stayed below start {start}: no early drop")
        check_eq(sock["accepted"], FLOOD + attempted + 1, "every connection reached usherd")
        check(dropped.get("penalty", 0) > 0, f"the flooding block was penalised: {dropped}")
        # Per-source rules only: past its PerSourceMaxStartups= the block waits in the room
        # (and past PerSourceMaxParked= is refused, queue-full), until its penalty refuses it;
        # a connection the flooder closed before usherd accepted it is refused as peer-closed.
        per_source = {"penalty", "per-source-startups", "queue-full", "queue-timeout",
                      "peer-closed"}
        check(sum(dropped.get(r, 0) for r in per_source) > FLOOD // 2,
              f"most of the flood was refused by the per-source rules: {dropped}")
        check(set(dropped) <= per_source, f"drop reasons: {dropped}")
        check_eq(drop_sources(usherd), {FLOODER}, "sources of the logged drops")

        status = settle(usherd)
        check_at_rest(usherd, status, fds_before)
        check(loadkit.login(port, FLOODER), "the flooding block is served again afterwards")


def test_an_rst_storm_costs_nothing_that_stays():
    harness.require_binaries(loadkit.SLOW_AUTH)
    storm_size = max(FLOOD // 2, 100)
    with harness.Usherd(loadkit.slow_auth_units(delay_ms=100), config=CONFIG) as usherd:
        port = usherd.port("login.socket")
        check(loadkit.login(port, OTHER), "a login works before the storm")
        loadkit.quiescent(usherd, ["login.socket"])
        fds_before = loadkit.fd_count(usherd.proc.pid)
        rss_before = loadkit.rss_kib(usherd.proc.pid)

        other = loadkit.Steady(port, OTHER).start()
        storm = loadkit.Clients(lambda i: loadkit.hit_and_leave(port, "127.0.0.4", reset=True),
                                storm_size).start()
        storm.join(timeout=240)
        other.stop()

        status = settle(usherd)
        sock = usherd.socket_status("login.socket", status)
        print(f"RST storm: {storm_size} resets from 127.0.0.4; accepted {sock['accepted']}, "
              f"admitted {sock['admitted']}, dropped {sock['dropped']}; other source "
              f"{other.served}/{other.attempted} served; RSS {rss_before} -> "
              f"{loadkit.rss_kib(usherd.proc.pid)} KiB")
        check(not other.errors, f"logins during the storm failed: {other.errors[:3]}")
        check(other.ratio() >= 0.99, f"{other.served}/{other.attempted} logins served")
        # A connection reset before usherd accepted it may never reach accept(); none is
        # counted twice, and every one usherd saw is accounted for.
        check(sock["accepted"] <= storm_size + other.attempted + 1, "accepted at most sent")
        check(sock["accepted"] >= other.attempted + 1, "the other source's logins accepted")
        check_at_rest(usherd, status, fds_before)
        check(loadkit.login(port, "127.0.0.4"), "the storming block is served again afterwards")


def test_slowloris_holds_only_its_share_until_the_startup_timeout():
    harness.require_binaries(loadkit.SLOW_AUTH)
    held_count = 40
    # Long enough for the 20 logins below to finish first, under sanitizers too (each
    # process runs several times slower there).
    timeout_s = 10 if harness.sanitized() else 2
    units = loadkit.slow_auth_units(delay_ms=50,
                                    socket_extra=f"X-StartupTimeoutSec={timeout_s}\n")
    # Refused at once, not parked: what a slowloris source holds is the point here.
    with harness.Usherd(units, config=CONFIG + "WaitingRoom=no\n") as usherd:
        port = usherd.port("login.socket")
        loadkit.quiescent(usherd, ["login.socket"])
        fds_before = loadkit.fd_count(usherd.proc.pid)
        mark = usherd.log_mark()
        held = [loadkit.connect(port, "127.0.0.5") for _ in range(held_count)]
        # Each connection is either an instance waiting for a banner that never comes, or
        # dropped at once: the per-source limit admits 3.
        sock = loadkit.wait_until(
            lambda: (lambda s: s if s["accepted"] == held_count else None)(
                usherd.socket_status("login.socket")),
            timeout=30, what="every slowloris connection accepted")
        check_eq(sock["admitted"], 3, "slowloris connections admitted (PerSourceMaxStartups=3)")
        check_eq(sock["dropped"], {"per-source-startups": held_count - 3}, "the rest dropped")

        # Meanwhile another source logs in as usual.
        other = [loadkit.login(port, OTHER) for _ in range(20)]
        check_eq(sum(other), 20, "logins from another source while slowloris holds")
        check_eq(usherd.status()["startups"]["current"], 3, "slowloris holds 3 startups")

        # The startup timeout stops the 3; every slowloris socket is closed by usherd.
        for s in held:
            check_eq(loadkit.read_until_closed(s), b"", "a slowloris socket ends without a word")
            s.close()
        usherd.wait_instances_gone("login.socket")
        timeouts = [l for l in usherd.log_text().splitlines()[mark:]
                    if re.search(r"timeout instance=login@", l)]
        check_eq(len(timeouts), 3, "instances stopped by the startup timeout")
        check(not loadkit.login(port, "127.0.0.5"), "the slowloris block is penalised")
        status = settle(usherd)
        check_eq(usherd.socket_status("login.socket", status)["dropped"].get("penalty"), 1,
                 "the penalty drop")
        check_at_rest(usherd, status, fds_before)
        check(loadkit.login(port, "127.0.0.5"), "the slowloris block is served again afterwards")
        print(f"slowloris: {held_count} silent connections, 3 admitted and stopped by the startup "
              f"timeout, {held_count - 3} dropped; 20/20 logins from another source served")



def test_a_burst_of_simultaneous_connections_is_served_whole():
    harness.require_binaries(LOADGEN, OKD)
    with harness.Usherd(okd_units("burst", hold_ms=1000)) as usherd:
        port = usherd.port("burst.socket")
        fds_before = loadkit.fd_count(usherd.proc.pid)
        with harness.TempDir() as tmp:
            report = os.path.join(tmp, "burst.json")
            # Every client connects at once (concurrency = count) and holds its connection for
            # the second okd keeps it: thousands of processes are started within moments.
            subprocess.run([LOADGEN, "-q", "-n", str(BURST), "-c", str(BURST), "-t", "120",
                            "-T", "90000", "-e", "ok\n", "-j", report, f"127.0.0.1:{port}"],
                           check=False, timeout=150)
            with open(report) as f:
                result = json.load(f)
        print(f"burst: {result['ok']}/{BURST} served at {result['conn_per_s']:.0f} conn/s, "
              f"p99 {result['latency_ms']['p99']:.0f} ms, failures {result['failures']}")
        check_eq(result["ok"], BURST, f"every connection of the burst served: {result['failures']}")
        status = loadkit.quiescent(usherd, ["burst.socket"])
        sock = usherd.socket_status("burst.socket", status)
        check_eq(sock["dropped"], {}, "connections dropped")
        check_eq(sock["admitted"], BURST, "connections admitted")
        check_eq(len(re.findall(r"spawn instance=", usherd.log_text())), 0, "failed spawns logged")
        check_eq(loadkit.fd_count(usherd.proc.pid), fds_before, "usherd's open fds afterwards")
        check_eq(loadkit.zombies(usherd.proc.pid), [], "zombie children of usherd")


def test_hundreds_of_instances_ending_at_once_are_all_reaped():
    # usherd is stopped while every instance is killed, so that all their ends are waiting at
    # once when it goes on: more reports from the exit watch than one batch, every one of which
    # must reach its instance (the status, the end line, the reap, the pidfd closed).
    harness.require_binaries(LOADGEN, OKD)
    count = 200
    with harness.Usherd(okd_units("held", hold_ms=120000)) as usherd:
        port = usherd.port("held.socket")
        fds_before = loadkit.fd_count(usherd.proc.pid)
        clients = subprocess.Popen([LOADGEN, "-q", "-n", str(count), "-c", str(count), "-t", "150",
                                    "-T", "150000", "-e", "ok\n", f"127.0.0.1:{port}"])
        try:
            pids = loadkit.wait_until(
                lambda: (lambda live: live if len(live) == count else None)(
                    [i["pid"] for i in usherd.status()["instances"]]),
                timeout=60, what=f"{count} live instances")
            os.kill(usherd.proc.pid, signal.SIGSTOP)
            try:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                # Every one has ended (a zombie of the stopped usherd) before usherd goes on.
                loadkit.wait_until(lambda: len(loadkit.zombies(usherd.proc.pid)) >= count,
                                   timeout=30, what="every instance a zombie")
            finally:
                os.kill(usherd.proc.pid, signal.SIGCONT)
            status = loadkit.quiescent(usherd, ["held.socket"])
        finally:
            try:
                clients.wait(timeout=60)  # its connections closed with their instances
            except subprocess.TimeoutExpired:
                clients.kill()
                clients.wait()
        check_eq(status["instances"], [], "instances afterwards")
        # The log is written behind the loop: its lines may trail the status by a moment.
        killed = re.compile(r"end instance=held@\S+ pid=\d+ status=killed signal=Killed")
        loadkit.wait_until(lambda: len(killed.findall(usherd.log_text())) == count, timeout=30,
                           what=f"{count} instances logged as killed")
        check_eq(loadkit.zombies(usherd.proc.pid), [], "zombie children of usherd")
        check_eq(loadkit.fd_count(usherd.proc.pid), fds_before, "usherd's open fds afterwards")
        # And it goes on serving.
        with loadkit.connect(port) as s:
            check_eq(s.recv(3), b"ok\n", "a connection after them answered")


def test_clients_gone_before_their_accept_start_nothing():
    """A connect-and-close storm: every connection the kernel completed while usherd was not
    looking and whose client has closed since is refused at accept (peer-closed), with no
    instance started for an EOF, and its source penalised as sshd would a child that never
    tried to authenticate."""
    harness.require_binaries(loadkit.SLOW_AUTH)
    gone = 20
    with harness.Usherd(loadkit.slow_auth_units(delay_ms=50), config=CONFIG) as usherd:
        port = usherd.port("login.socket")
        loadkit.quiescent(usherd, ["login.socket"])
        # usherd stopped: the kernel completes the handshakes into the accept queue, and each
        # client closes before usherd can accept it.
        usherd.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(gone):
                loadkit.hit_and_leave(port, "127.0.0.6")
        finally:
            usherd.proc.send_signal(signal.SIGCONT)
        sock = loadkit.wait_until(
            lambda: (lambda s: s if s["accepted"] == gone else None)(
                usherd.socket_status("login.socket")),
            timeout=20, what="every closed connection accepted")
        # Each earns its source noauth: past the penalties' min the rest are refused as
        # penalised, the rule before peer-closed.
        dropped = sock["dropped"]
        check(set(dropped) <= {"peer-closed", "penalty"} and dropped.get("peer-closed", 0) > 0,
              f"refused as gone, then as penalised: {dropped}")
        check_eq(sum(dropped.values()), gone, "every gone connection refused")
        check_eq(sock["admitted"], 0, "nothing started for a client that had left")
        check_eq(usherd.status()["startups"]["peak"], 0, "no startup for them")
        check(usherd.status()["penalised_sources"] >= 1 or "penalty" in dropped,
              "the storm's source penalised (noauth, as sshd would)")
        check(loadkit.login(port, OTHER), "a real client is served afterwards")
        print(f"{gone} connections closed before their accept: refused, nothing started")

if __name__ == "__main__":
    harness.main(globals())

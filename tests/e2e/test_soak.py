#!/usr/bin/python3
"""Soak: many connections, admitted and dropped, and usherd ends where it started.

Five kinds of connection, in turn, against one slow-auth socket (tests/helpers/slow_auth
with no delay: a banner, READY=1 over the notify socket, "ready"):
  - two full logins from 127.0.0.1 (admitted, ready, ended by the client);
  - one from 127.0.0.8, which IPAddressDeny= refuses (dropped: acl);
  - one from 127.0.0.7 that connects and leaves at once: admitted, and its instance ends
    before readiness (the block is in PerSourcePenaltyExemptList=, so it stays admitted);
  - one from 127.0.0.6 that does the same and is not exempt: its block is soon refused
    (dropped: penalty).
After a warm-up (allocator pools, hash tables, the penalty entry) usherd's open fds, RSS and
zombie children are taken as the baseline; after the run every one must be back to it (RSS
within a small allowance for the allocator), every connection accounted for, no startup
or instance left.

USHERD_SOAK_CONNECTIONS sets the run's size (default 10,000, 3,000 under sanitizers, where
ASan's leak check at exit finds a leak of any size; `make soak` runs 100,000).
"""

import os
import time

import harness
import loadkit
from harness import check, check_eq

COUNT = int(os.environ.get("USHERD_SOAK_CONNECTIONS",
                           "3000" if harness.sanitized() else "10000"))
WARMUP = 400
# glibc keeps some freed memory in its arenas; a leak of even 100 bytes per connection
# would exceed this over 10,000 connections.
RSS_ALLOWANCE_KIB = 512
DENIED, LEAVER, PENALISED = "127.0.0.8", "127.0.0.7", "127.0.0.6"
CONFIG = ("[Policy]\n"
          # Startups stay far below start: no login may be dropped early by chance.
          "MaxStartups=64:30:100\n"
          f"PerSourcePenaltyExemptList={LEAVER}/32\n")


def one_connection(port, i):
    kind = i % 5
    if kind in (0, 1):
        check(loadkit.login(port, "127.0.0.1"), f"login {i} served")
        return "login"
    if kind == 2:
        with loadkit.connect(port, DENIED) as s:
            check_eq(loadkit.read_until_closed(s), b"", f"denied connection {i} closed")
        return "denied"
    loadkit.hit_and_leave(port, LEAVER if kind == 3 else PENALISED)
    return "leaver" if kind == 3 else "penalised"


def snapshot(usherd):
    pid = usherd.proc.pid
    return {"fds": loadkit.fd_count(pid), "rss_kib": loadkit.rss_kib(pid),
            "zombies": loadkit.zombies(pid)}


def test_a_long_mixed_run_returns_fds_rss_and_zombies_to_their_baseline():
    harness.require_binaries(loadkit.SLOW_AUTH)
    units = loadkit.slow_auth_units(delay_ms=0, socket_extra=f"IPAddressDeny={DENIED}\n"
                                                              "MaxConnections=1000\n")
    with harness.Usherd(units, config=CONFIG) as usherd:
        port = usherd.port("login.socket")
        loadkit.Clients(lambda i: one_connection(port, i), WARMUP).start().join()
        loadkit.quiescent(usherd, ["login.socket"])
        before = snapshot(usherd)
        start_counts = usherd.socket_status("login.socket")

        started = time.monotonic()
        results = loadkit.Clients(lambda i: one_connection(port, i), COUNT).start().join(
            timeout=harness.TEST_TIMEOUT_S)
        elapsed = time.monotonic() - started
        status = loadkit.quiescent(usherd, ["login.socket"])
        after = snapshot(usherd)
        sock = usherd.socket_status("login.socket", status)

        admitted = sock["admitted"] - start_counts["admitted"]
        dropped = {k: v - start_counts["dropped"].get(k, 0) for k, v in sock["dropped"].items()}
        print(f"soak: {COUNT} connections in {elapsed:.1f}s ({COUNT / elapsed:.0f}/s): admitted "
              f"{admitted}, dropped {dropped}; fds {before['fds']} -> {after['fds']}, RSS "
              f"{before['rss_kib']} -> {after['rss_kib']} KiB, zombies "
              f"{len(before['zombies'])} -> {len(after['zombies'])}")
        check_eq(sock["accepted"] - start_counts["accepted"], COUNT, "connections accepted")
        check_eq(admitted + sum(dropped.values()), COUNT, "each one admitted or dropped")
        check_eq(dropped.get("acl"), results.count("denied"), "denied connections")
        # A leaver that has closed before usherd accepts it is refused as peer-closed (nothing
        # is started for it); one still there when accepted is admitted and reads its EOF.
        check_eq(dropped.get("penalty", 0) + dropped.get("peer-closed", 0) + admitted,
                 results.count("login") + results.count("leaver") + results.count("penalised"),
                 "logins and exempt leavers admitted or refused as gone, the penalised block "
                 "refused")
        check(dropped.get("penalty", 0) > results.count("penalised") // 2,
              f"the penalised block is refused: {dropped}")
        check(set(dropped) <= {"acl", "penalty", "peer-closed"}, f"drop reasons: {dropped}")
        check(dropped.get("acl", 0) > 0 and dropped.get("penalty", 0) > 0,
              f"the denied and the penalised block were refused: {dropped}")
        check_eq(status["startups"]["current"], 0, "startups left")
        check_eq(after["fds"], before["fds"], "usherd's open fds")
        check_eq(after["zombies"], [], "zombie children of usherd")
        # ASan keeps freed memory in quarantine, resident by design: RSS says nothing there.
        check(harness.sanitized() or after["rss_kib"] <= before["rss_kib"] + RSS_ALLOWANCE_KIB,
              f"usherd's RSS {before['rss_kib']} -> {after['rss_kib']} KiB (allowance "
              f"{RSS_ALLOWANCE_KIB} KiB)")


if __name__ == "__main__":
    harness.main(globals())

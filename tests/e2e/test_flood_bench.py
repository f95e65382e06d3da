#!/usr/bin/python3
"""The flood benchmark (bench/flood/, `make bench-flood`) in seconds, so that it cannot rot.

bench/flood/flood.py runs usherd in front of real OpenSSH (sshd -i, an AuthorizedKeysCommand
that takes 1 s) with a small budget (MaxStartups=4:30:8, PerSourceMaxStartups=3), real ssh
logins from 127.0.0.2 and from the admin's ExemptSources= address 127.0.0.9, and one attack
for a few seconds: the incident's herd of ssh clients from one address (also against a
directory service that serves four lookups at a time), a banner-and-stall flood from
127.0.4.0/24 (ReclaimStalledSec=1s: its stalled startups go to the waiting connections), or a
connect-and-close storm from there. Each test checks what the benchmark claims, not how fast
this machine is:

- the attack reached usherd's budget (connections dropped by reason), so it was an attack;
- the admin got in every time while it lasted (the reserved startups);
- never more startups than full + ReservedStartups (usherd's peak), and the benchmark's
  sampler saw the unauthenticated sshd processes it reports;
- logins work again afterwards without anyone touching usherd;
- the benchmark ended every process it started (flood.py fails otherwise), and its report
  renders a row for the scenario.
"""
# ctest-resource-lock: run-sshd

import json
import os
import sys

import harness
from harness import check, check_eq

FULL, RESERVED = 8, 2


def run_flood(attack, extra=()):
    harness.require_root()
    harness.require_binaries("/usr/sbin/sshd", "ssh", "ssh-keygen")
    harness.skip_under_sanitizers("it times real ssh logins; `make test` runs it")
    source = harness.source_dir()
    flood = os.path.join(source, "bench", "flood", "flood.py")
    with harness.TempDir("usherd-flood-test.") as out:
        argv = [sys.executable, flood, "--build", harness.build_dir(), "--out", out,
                "--contenders", "usherd", "--attacks", attack,
                "--warm-s", "2", "--attack-s", "5", "--recover-s", "1", "--recover-probe-s", "20",
                "--legit-rate", "2", "--admin-every", "1", "--deadline-s", "20",
                "--max-startups", f"4:30:{FULL}", "--per-source", "3",
                "--herd-clients", "20", "--herd-pause-s", "1",
                "--stall-rate", "300", "--stall-max-open", "100", "--storm-rate", "300",
                "--reclaim-stalled-s", "1", *extra]
        proc = harness.run(argv, timeout=80, check_rc=False)
        check_eq(proc.returncode, 0, f"flood.py exit code (stderr:\n{proc.stderr})")
        with open(os.path.join(out, "results.jsonl"), encoding="utf-8") as f:
            results = [json.loads(line) for line in f]
        check_eq(len(results), 1, "scenarios run")
        report = harness.run([sys.executable, os.path.join(source, "bench", "flood", "report.py"),
                              out, "--no-plot"])
        check(f"| {attack} | usherd |" in report.stdout,
              f"the report has the scenario's row:\n{report.stdout}")
        for name in ("usherd.conf", "ssh.socket", "ssh@.service", "sshd_config", "command"):
            check(os.path.exists(os.path.join(out, "configs", "usherd", name)),
                  f"the report keeps the configuration file {name}")
    r = results[0]
    sys.stderr.write(json.dumps({k: v for k, v in r.items()
                                 if k not in ("timeline", "samples", "status_at_peak")}) + "\n")
    return r


def check_common(r, reasons):
    check_eq(r["left_running"], [], "processes the scenario left running")
    sock = r["status_at_peak"]["sockets"][0]
    dropped = sock.get("dropped") or {}
    if reasons:
        # With the waiting room (the default) a connection past the budget waits for a turn
        # before it is refused: parking is reaching the limits too.
        room = r["status_at_peak"].get("waiting_room", {})
        check(any(dropped.get(reason, 0) > 0 for reason in reasons) or room.get("peak", 0) > 0,
              f"the attack reached usherd's limits ({' or '.join(reasons)}, or the waiting "
              f"room); dropped: {dropped}, room: {room}")
    check(sock["accepted"] > r["legit_attempts"] + r["admin_attempts"],
          f"usherd accepted {sock['accepted']} connections: the attack reached it")
    check(r["admin_attempts"] >= 2, f"admin logins during the attack: {r['admin_attempts']}")
    check_eq(r["admin_ok"], r["admin_attempts"],
             f"admin logins that got in while attacked (errors: {r['errors']})")
    peak = r["status_at_peak"]["startups"]["peak"]
    check(peak <= FULL + RESERVED,
          f"usherd's startups peaked at {peak}, above full {FULL} + reserved {RESERVED}")
    check(r["peak_unauthenticated"] > 0, "the sampler saw unauthenticated sshd processes")
    check(r["alive_after"] and not r["manual_recovery"],
          f"a login got in after the attack without touching usherd: {r['recovered_after_s']}")


def test_the_admin_gets_in_every_time_while_a_herd_of_ssh_clients_floods_one_address():
    r = run_flood("herd")
    check_common(r, ["per-source-startups"])
    check(r["attack_detail"]["attempts"] > 20, f"herd logins attempted: {r['attack_detail']}")


def test_the_admin_gets_in_every_time_during_a_many_source_banner_and_stall_flood():
    r = run_flood("stall")
    # 100 stalled connections from 254 addresses against full=8: the budget fills.
    check_common(r, ["startups-early-drop", "startups-full", "max-connections"])
    check(r["attack_detail"]["peak_open"] > FULL, f"stalled connections: {r['attack_detail']}")
    # The stalled connections' startups went to the waiting connections (ReclaimStalledSec=1s).
    reclaimed = r["status_at_peak"].get("startups_reclaimed", 0)
    check(reclaimed > 0, f"stalled startups reclaimed: {reclaimed}")


def test_the_admin_gets_in_every_time_while_a_herd_meets_a_directory_of_few_lookups():
    r = run_flood("slowdir")
    check_common(r, ["per-source-startups"])
    # Logins take longer behind the directory's four lookups at a time: every herd client
    # tried at least once.
    check(r["attack_detail"]["attempts"] >= 20, f"herd logins attempted: {r['attack_detail']}")


def test_the_admin_gets_in_every_time_during_a_connect_and_close_storm():
    r = run_flood("storm")
    # How many dead connections pile up as startups depends on the machine's speed: no
    # drop reason is required, only that the storm reached usherd and was accounted for.
    check_common(r, [])


if __name__ == "__main__":
    harness.main(globals())

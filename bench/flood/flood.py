#!/usr/bin/python3
"""The flood benchmark (issue #24): who still logs in to a real OpenSSH with slow
authentication while it is flooded, how fast, and what the flood costs the host, for usherd
and for every other way of putting sshd on a port.

    bench/flood/flood.py --build BUILD_DIR --out OUT [--contenders ...] [--attacks ...] ...

Per contender and attack, one scenario: start the contender; WARM_S of legitimate logins
(from 127.0.0.2, LEGIT_RATE a second) and admin logins (127.0.0.9, every ADMIN_EVERY s)
alone, which give the unloaded times; ATTACK_S with the attack on top; RECOVER_S after it;
then a probe: does a login get in without anyone touching the server? Attacks:

  herd   the incident's loop: HERD_CLIENTS real ssh logins at once from 127.0.0.3, each
         starting again when it ends (HERD_PAUSE_S after a refusal)
  stall  from 127.0.4.0/24: connect, send an SSH banner, stall; up to STALL_MAX_OPEN open,
         up to STALL_RATE new ones a second
  storm  from 127.0.4.0/24: connect and close, up to STORM_RATE a second
  slowdir  the herd, against a directory service that serves DIRECTORY_SLOTS lookups at a
         time (the others queue): spawning an sshd per connection without a bound piles
         lookups up behind it until logins pass their deadline

Writes OUT/results.jsonl (one JSON object a scenario: figures, every login, samples) and
OUT/configs/ (what each contender ran). bench/flood/report.py turns it into the table and
the plot. Everything stays on 127.0.0.0/8, every loop is bounded in time, and every process
a scenario started is ended before the next (checked: a survivor is an error).
Needs root (sshd, the login user, /run/sshd). Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import contenders  # noqa: E402
import load  # noqa: E402
import procs  # noqa: E402

LEGIT_SOURCE, ADMIN_SOURCE, HERD_SOURCE = "127.0.0.2", "127.0.0.9", "127.0.0.3"
DIRECTORY_SLOTS = 4
FLOOD_FIRST = "127.0.4.1"  # and the 253 addresses after it
FLOOD_PREFIX = "127.0.4."
# usherd's log line for a started instance: "accept socket=ssh.socket peer=ADDR:PORT ..."
ACCEPT_LINE = re.compile(r" accept socket=\S+ peer=([0-9.]+):\d+ ")


class Sampler(load.Loop):
    """Samples the contender's tree every interval_s on a thread."""

    def __init__(self, root, interval_s=0.5):
        super().__init__()
        self.root, self.interval_s = root, interval_s
        self.samples = []

    def _run(self):
        while not self._stop.is_set():
            self.take()
            self._stop.wait(self.interval_s)

    def take(self):
        s = procs.Sample(self.root, with_memory=True)
        self.samples.append(s)
        return s


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))]


class Attack:
    """bench/flood/attack.py as a child process: started, then stopped by closing its stdin;
    its counts come back as JSON."""

    def __init__(self, argv):
        self.argv = [sys.executable, os.path.join(here, "attack.py"), *map(str, argv)]
        self.counts = {}

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        return self

    def stop(self):
        out, _ = self.proc.communicate(input="", timeout=120)
        self.counts = json.loads(out) if self.proc.returncode == 0 and out.strip() else {}
        if not self.counts:
            raise RuntimeError(f"attack {self.argv[2:]} failed (exit {self.proc.returncode})")

    def connections(self):
        return self.counts.get("connections", 0)


def make_attack(name, args, setup, port):
    if name in ("herd", "slowdir"):
        return Attack(["herd", setup.client_key, contenders.USER, port, HERD_SOURCE,
                       args.herd_clients, args.deadline_s, args.herd_pause_s])
    if name == "stall":
        return Attack(["stall", port, args.stall_rate, args.stall_max_open, FLOOD_FIRST, 254])
    if name == "storm":
        return Attack(["storm", port, args.storm_rate, 200, FLOOD_FIRST, 254])
    raise ValueError(name)


def recovery_probe(contender, setup, args):
    """After the attack: seconds until a fresh login gets in by itself, or None."""
    started = time.monotonic()
    while time.monotonic() - started < args.recover_probe_s:
        if not contender.alive():
            return None
        login = load.ssh_login("probe", setup.client_key, contenders.USER, contender.port,
                               LEGIT_SOURCE, args.deadline_s)
        if login.ok:
            return time.monotonic() - started
        time.sleep(1.0)
    return None


def slots_by_source(c):
    """usherd only: the instances it started in the scenario (its accept lines), by who got
    them: the attackers' addresses (how many, and how many distinct blocks), the legitimate
    user, the admin, the herd. None for the others, which log no such line."""
    if c.name != "usherd":
        return None
    counts = {"attack": 0, "legit": 0, "admin": 0, "herd": 0}
    attack_blocks = set()
    with open(os.path.join(c.dir, "server.log"), encoding="utf-8", errors="replace") as f:
        for line in f:
            m = ACCEPT_LINE.search(line)
            if not m:
                continue
            peer = m.group(1)
            if peer.startswith(FLOOD_PREFIX):
                counts["attack"] += 1
                attack_blocks.add(peer)
            elif peer == LEGIT_SOURCE:
                counts["legit"] += 1
            elif peer == ADMIN_SOURCE:
                counts["admin"] += 1
            elif peer == HERD_SOURCE:
                counts["herd"] += 1
    counts["attack_blocks"] = len(attack_blocks)
    return counts


def scenario(cls, attack_name, args, setup, limits, run_dir):
    # slowdir: the herd against a directory service that serves DIRECTORY_SLOTS lookups at a
    # time (issue #27's variant a).
    contenders.limit_directory(setup.dir, DIRECTORY_SLOTS if attack_name == "slowdir" else 0)
    c = cls(setup, limits, os.path.join(run_dir, f"{cls.name}-{attack_name}"), args.build)
    c.start()
    load_before = open("/proc/loadavg").read().split()[:3]
    sampler = Sampler(c.proc.pid).start()
    key, user, port = setup.client_key, contenders.USER, c.port
    legit = load.Periodic("legit", key, user, port, LEGIT_SOURCE, 1 / args.legit_rate,
                          args.deadline_s).start()
    admin = load.Periodic("admin", key, user, port, ADMIN_SOURCE, args.admin_every,
                          args.deadline_s).start()
    t_warm = time.monotonic()
    time.sleep(args.warm_s)
    attack = make_attack(attack_name, args, setup, port)
    host_a, tree_a = procs.host_busy_s(), sampler.take()
    t_a = time.monotonic()
    attack.start()
    time.sleep(args.attack_s)
    t_b = time.monotonic()
    host_b, tree_b = procs.host_busy_s(), sampler.take()
    t_status = time.monotonic()
    status = c.status()  # at the height of the attack
    status_s = time.monotonic() - t_status
    attack.stop()
    stop_s = time.monotonic() - t_status - status_s
    time.sleep(args.recover_s)
    logins = legit.stop() + admin.stop()
    recovered_after = recovery_probe(c, setup, args)
    alive = c.alive()
    sampler.stop()
    left = c.stop()
    left += procs.pids_mentioning(setup.dir)
    slots = slots_by_source(c)
    conns = attack.connections()

    def during(who):
        return [x for x in logins if x.who == who and t_a <= x.started < t_b]

    def warm(who):
        return [x for x in logins if x.who == who and x.started < t_a]

    lg, ad = during("legit"), during("admin")
    ok_times = [x.duration for x in lg if x.ok]
    attack_samples = [s for s in sampler.samples if t_a <= s.t <= t_b + 1.0]
    warm_admin = [x.duration for x in warm("admin") if x.ok]
    warm_legit = [x.duration for x in warm("legit") if x.ok]
    figures = {
        "contender": c.name, "attack": attack_name, "limits": c.limits_text,
        "per_connection": c.per_connection,
        "legit_attempts": len(lg), "legit_ok": sum(x.ok for x in lg),
        "legit_p50_s": percentile(ok_times, 50), "legit_p99_s": percentile(ok_times, 99),
        "legit_unloaded_s": statistics.median(warm_legit) if warm_legit else None,
        "admin_attempts": len(ad), "admin_ok": sum(x.ok for x in ad),
        "admin_worst_s": max((x.duration for x in ad), default=None),
        "admin_unloaded_s": statistics.median(warm_admin) if warm_admin else None,
        "attack_connections": conns,
        "attack_detail": attack.counts,
        "peak_unauthenticated": max((s.unauthenticated for s in attack_samples), default=0),
        "peak_processes": max((s.processes for s in attack_samples), default=0),
        "host_cpu_s": host_b - host_a,
        "server_cpu_s": tree_b.cpu_s - tree_a.cpu_s,
        "host_cpu_s_per_1000": 1000 * (host_b - host_a) / conns if conns else None,
        "server_cpu_s_per_1000": 1000 * (tree_b.cpu_s - tree_a.cpu_s) / conns if conns else None,
        "peak_pss_mib": max((s.pss_kib for s in attack_samples), default=0) / 1024,
        "idle_pss_mib": tree_a.pss_kib / 1024,
        "alive_after": alive,
        "recovered_after_s": recovered_after,
        "manual_recovery": not alive or recovered_after is None,
        "left_running": left,
        "errors": sorted({x.error for x in lg + ad if x.error})[:8],
        "status_at_peak": status,
        "slots": slots,
        "timeline": [[round(x.started - t_a, 3), x.who, x.ok, round(x.duration, 3)]
                     for x in logins],
        "samples": [[round(s.t - t_a, 2), s.unauthenticated, s.processes,
                     round(s.pss_kib / 1024, 1)] for s in sampler.samples],
        "loadavg_before": load_before,
        "phases": {"warm_s": t_a - t_warm, "attack_s": t_b - t_a, "recover_s": args.recover_s,
                   "attack_stop_s": stop_s, "status_s": status_s},
    }
    return figures, c


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", required=True, help="usherd build directory")
    p.add_argument("--out", required=True)
    p.add_argument("--contenders", default="usherd sshd xinetd ssa tcpsvd")
    p.add_argument("--attacks", default="herd slowdir stall storm")
    p.add_argument("--warm-s", type=float, default=4)
    p.add_argument("--attack-s", type=float, default=18)
    p.add_argument("--recover-s", type=float, default=3)
    p.add_argument("--recover-probe-s", type=float, default=20)
    p.add_argument("--legit-rate", type=float, default=2.0, help="legitimate logins a second")
    p.add_argument("--admin-every", type=float, default=2.5, help="seconds between admin logins")
    p.add_argument("--deadline-s", type=float, default=15, help="a login slower than this fails")
    p.add_argument("--herd-clients", type=int, default=100)
    p.add_argument("--herd-pause-s", type=float, default=3.0,
                   help="a herd client's wait after a refused login")
    p.add_argument("--stall-rate", type=int, default=1000)
    p.add_argument("--stall-max-open", type=int, default=500)
    p.add_argument("--storm-rate", type=int, default=1000)
    p.add_argument("--max-startups", default="10:30:100")
    p.add_argument("--per-source", type=int, default=10,
                   help="per-source startups (usherd, sshd), per_source (xinetd), -C (tcpsvd)")
    p.add_argument("--instances", type=int, default=100)
    p.add_argument("--reclaim-stalled-s", type=float, default=5,
                   help="usherd's ReclaimStalledSec= (0: off)")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("flood.py: needs root (sshd, its privilege separation, a login user)")
    args.build = os.path.realpath(args.build)
    os.makedirs(args.out, exist_ok=True)
    limits = contenders.Limits(args.max_startups, args.per_source, args.instances,
                               args.reclaim_stalled_s)
    run_dir = tempfile.mkdtemp(prefix="usherd-flood.", dir="/run")
    failures = 0
    try:
        setup = contenders.SshdSetup(run_dir, limits)
        results = open(os.path.join(args.out, "results.jsonl"), "a", encoding="utf-8")
        for name in args.contenders.split():
            cls = contenders.ALL[name]
            why = cls(setup, limits, os.path.join(run_dir, "probe-" + name), args.build).available()
            if why:
                print(f"flood: {name} skipped: {why}", file=sys.stderr, flush=True)
                continue
            for attack_name in args.attacks.split():
                started = time.monotonic()
                figures, c = scenario(cls, attack_name, args, setup, limits, run_dir)
                save_configs(args.out, c)
                results.write(json.dumps(figures) + "\n")
                results.flush()
                if figures["left_running"]:
                    failures += 1
                print(f"flood: {name:7} {attack_name:6} legit {figures['legit_ok']}/"
                      f"{figures['legit_attempts']} p99 {fmt(figures['legit_p99_s'])} admin "
                      f"{figures['admin_ok']}/{figures['admin_attempts']} worst "
                      f"{fmt(figures['admin_worst_s'])} unauth<={figures['peak_unauthenticated']} "
                      f"cpu/1000 {fmt(figures['host_cpu_s_per_1000'])} (server "
                      f"{fmt(figures['server_cpu_s_per_1000'])}) conns "
                      f"{figures['attack_connections']} pss {figures['peak_pss_mib']:.0f}MiB "
                      f"recovered {fmt(figures['recovered_after_s'])} "
                      f"[{time.monotonic() - started:.0f}s]", file=sys.stderr, flush=True)
        results.close()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if failures:
        print(f"flood: {failures} scenarios left processes running", file=sys.stderr)
    return 1 if failures else 0


def fmt(x):
    return "-" if x is None else f"{x:.2f}"


def save_configs(out, c):
    d = os.path.join(out, "configs", c.name)
    os.makedirs(d, exist_ok=True)
    files = dict(c.config_files())
    files["command"] = " ".join(c.command()) + "\n"
    files["sshd_config"] = open(c.setup.config, encoding="utf-8").read()
    for name, text in files.items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text.replace(c.setup.dir, "$RUN").replace(c.build_dir, "$BUILD")
                    .replace(str(c.port), "$PORT"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

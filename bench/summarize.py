#!/usr/bin/env python3
"""Summarises one bench/run.sh results folder into summary.md and plot.png.

Reads churn.jsonl and hold.jsonl (one loadgen JSON object per run, label = server), and the
usherd-only drop.jsonl, spawn.tsv with spawn-rss.jsonl and spawn-nofile.jsonl, memory.tsv,
status.tsv with flood.jsonl, load.tsv and machine.txt. Every figure is the median over the
interleaved rounds; "ok" is the worst round. Ratios are to the best peer (any server but
usherd and usherd-baseline) at the same concurrency in the same results folder, so they compare servers
measured under the same conditions; the spread is the range over rounds.

    bench/summarize.py RESULTS_DIR      (PLOT=0 in the environment: no plot)
"""
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

SUBJECT = "usherd"


def is_peer(server):
    """Any server but usherd and usherd-baseline (an earlier build run alongside, BASELINE=)."""
    return server != SUBJECT and not server.startswith(SUBJECT + "-")


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def group(runs):
    """{(label, c): [runs]}"""
    out = defaultdict(list)
    for r in runs:
        out[(r["label"], r["c"])].append(r)
    return out


def med(runs, key):
    values = [key(r) for r in runs]
    return statistics.median(values) if values else 0.0


def worst_ok(runs):
    worst = min(runs, key=lambda r: r["ok"])
    return worst["ok"], worst["n"]


def churn_table(groups, servers, concurrencies):
    best = {}
    for c in concurrencies:
        peers = [med(groups[(s, c)], lambda r: r["conn_per_s"]) for s in servers
                 if is_peer(s) and (s, c) in groups]
        best[c] = max(peers) if peers else 0.0
    head = "| server | " + " | ".join(f"c={c} conn/s (× best peer)" for c in concurrencies)
    head += " | " + " | ".join(f"c={c} p50 / p99 / max ms" for c in concurrencies) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(concurrencies))]
    rows = []
    for s in servers:
        cells, lat = [], []
        for c in concurrencies:
            runs = groups.get((s, c))
            if not runs:
                cells.append("-")
                lat.append("-")
                continue
            rate = med(runs, lambda r: r["conn_per_s"])
            ratio = f"{rate / best[c]:.2f}×" if best[c] else "-"
            ok, n = worst_ok(runs)
            note = "" if ok == n else f", {ok}/{n} ok"
            cells.append(f"{rate:.0f} ({ratio}){note}")
            lat.append(" / ".join(f"{med(runs, lambda r, k=k: r['latency_ms'][k]):.2f}"
                                  for k in ("p50", "p99", "max")))
        rows.append((s, cells, lat))
    for s, cells, lat in rows:
        name = f"**{s}**" if s == SUBJECT else s
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(lat) + " |")
    return "\n".join(lines), best


def spread_table(groups, servers, concurrencies):
    """conn/s of every round, min-max, per server and concurrency."""
    lines = ["| server | " + " | ".join(f"c={c}: rounds (min-max)" for c in concurrencies) + " |",
             "|" + "---|" * (1 + len(concurrencies))]
    for s in servers:
        cells = []
        for c in concurrencies:
            runs = groups.get((s, c), [])
            rates = [r["conn_per_s"] for r in runs]
            cells.append(", ".join(f"{x:.0f}" for x in rates) +
                         (f" ({min(rates):.0f}-{max(rates):.0f})" if rates else "-"))
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_per_round(runs_subject, runs_peers):
    """usherd's conn/s over the best peer's, round by round (runs are in round order)."""
    out = []
    for i, r in enumerate(runs_subject):
        peers = [p[i]["conn_per_s"] for p in runs_peers if i < len(p)]
        if peers:
            out.append(r["conn_per_s"] / max(peers))
    return out


def failures_text(runs):
    total = defaultdict(int)
    for r in runs:
        for kind, count in r.get("failures", {}).items():
            total[kind] += count
    return ", ".join(f"{k} {v}" for k, v in sorted(total.items())) or "none"


def main():
    out = sys.argv[1]
    churn = load_jsonl(os.path.join(out, "churn.jsonl"))
    hold = load_jsonl(os.path.join(out, "hold.jsonl"))
    drop = load_jsonl(os.path.join(out, "drop.jsonl"))
    flood = load_jsonl(os.path.join(out, "flood.jsonl"))
    servers = []
    for r in churn + hold:
        if r["label"] not in servers:
            servers.append(r["label"])
    md = ["# usherd benchmark results", ""]
    machine = os.path.join(out, "machine.txt")
    if os.path.exists(machine):
        md += ["```", open(machine).read().rstrip(), "```", ""]

    cg = group(churn)
    concurrencies = sorted({c for (_, c) in cg})
    if churn:
        table, _ = churn_table(cg, servers, concurrencies)
        md += ["## Churn: okd replies and exits", "",
               "Median over rounds of conn/s (ratio to the best peer at that concurrency), "
               "then latency connect→EOF. Failures over all rounds: ", ""]
        md += [f"- {s}: " + failures_text([r for r in churn if r["label"] == s]) for s in servers]
        md += ["", table, ""]
        md += ["Spread: conn/s of each round.", "", spread_table(cg, servers, concurrencies), ""]
        ratios = []
        for c in concurrencies:
            subj = cg.get((SUBJECT, c), [])
            peers = [cg[(p, c)] for p in servers if is_peer(p) and (p, c) in cg]
            rr = ratio_per_round(subj, peers)
            if rr:
                ratios.append(f"c={c}: " + ", ".join(f"{x:.2f}" for x in rr))
        if ratios:
            md += ["usherd ÷ best peer, round by round: " + "; ".join(ratios) + ".", ""]
        baseline = SUBJECT + "-baseline"
        if baseline in servers:
            ratios = []
            for c in concurrencies:
                rr = ratio_per_round(cg.get((SUBJECT, c), []), [cg.get((baseline, c), [])])
                if rr:
                    ratios.append(f"c={c}: " + ", ".join(f"{x:.2f}" for x in rr) +
                                  f" (median {statistics.median(rr):.2f})")
            md += ["usherd ÷ usherd-baseline, round by round: " + "; ".join(ratios) + ".", ""]
    if hold:
        hg = group(hold)
        table, _ = churn_table(hg, servers, sorted({c for (_, c) in hg}))
        md += ["## Hold: okd replies and holds the connection 100 ms", "",
               "Ideal is concurrency / 0.1 s.", "", table, ""]
    if drop:
        rates = [(r["finished"] + r["failures"].get("reset", 0)) / r["elapsed_s"] for r in drop]
        md += ["## Drop path (usherd only)", "",
               "MaxStartups=1:100:1 held full by one instance that never becomes ready; "
               f"{drop[0]['n']} connections at c={drop[0]['c']} per round, every one dropped.",
               "",
               f"- connections dropped per second: median {statistics.median(rates):.0f} "
               f"(rounds: {', '.join(f'{x:.0f}' for x in rates)})",
               f"- latency p50 / p99 / max ms: {med(drop, lambda r: r['latency_ms']['p50']):.2f} / "
               f"{med(drop, lambda r: r['latency_ms']['p99']):.2f} / "
               f"{med(drop, lambda r: r['latency_ms']['max']):.2f}",
               f"- outcomes over all rounds: {drop_outcomes(drop)}", ""]
        status_path = os.path.join(out, "drop-status.json")
        if os.path.exists(status_path):
            st = json.load(open(status_path))
            for s in st.get("sockets", []):
                md.append(f"- usherd counted on {s['name']}: accepted {s.get('accepted')}, "
                          f"dropped {s.get('dropped')}")
            md.append("")
    spawn_path = os.path.join(out, "spawn.tsv")
    if os.path.exists(spawn_path):
        md += spawn_section(out, spawn_path)
    mem_path = os.path.join(out, "memory.tsv")
    if os.path.exists(mem_path):
        rows = [line.split("\t") for line in open(mem_path).read().split("\n") if line]
        base = None
        md += ["## Supervisor memory per live instance (usherd only)", "",
               "| live instances | usherd VmRSS KiB | KiB per instance over idle |", "|---|---|---|"]
        for k, rss in rows:
            if k == "hwm":
                md.append(f"| peak (VmHWM) | {rss} | |")
                continue
            k, rss = int(k), int(rss)
            if base is None:
                base = rss
            per = f"{(rss - base) / k:.1f}" if k else "-"
            md.append(f"| {k} | {rss} | {per} |")
        md.append("")
    status_path = os.path.join(out, "status.tsv")
    if os.path.exists(status_path):
        samples = defaultdict(list)
        for line in open(status_path):
            if line.strip():
                label, us = line.split("\t")
                samples[label].append(int(us) / 1000)
        md += ["## Status response time (usherd only)", "",
               "ctlping: usherd's answer to a `status` request on the control socket, connect "
               "to EOF, timed inside one client process. usherctl: wall time of the whole "
               "`usherctl status --json` process (exec, dynamic loading, request, reply, exit).",
               "", "| what | condition | samples | p50 ms | p90 ms | max ms |",
               "|---|---|---|---|---|---|"]
        for label, xs in samples.items():
            what, _, cond = label.partition("-")
            xs = sorted(xs)
            p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
            md.append(f"| {what} | {cond} | {len(xs)} | {statistics.median(xs):.1f} | "
                      f"{p90:.1f} | {max(xs):.1f} |")
        if flood:
            f = flood[0]
            md += ["", f"Flood during the 'flood' samples: {f['conn_per_s']:.0f} conn/s at "
                   f"c={f['c']}, {f['ok']} ok, p99 {f['latency_ms']['p99']:.1f} ms."]
        md.append("")
    load_path = os.path.join(out, "load.tsv")
    if os.path.exists(load_path):
        md += ["## Machine load", "", "1/5/15-minute load average after each round: " +
               "; ".join(l.strip().replace("\t", ": ") for l in open(load_path) if l.strip()) +
               ".", ""]
    if churn and os.environ.get("PLOT", "1") != "0" and plot(out, cg, servers, concurrencies):
        md += ["## Plot", "", "![conn/s and p99 against concurrency](plot.png)", ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


def spawn_section(out, spawn_path):
    """Spawn latency against usherd's RSS and RLIMIT_NOFILE (and tcpserver's RSS)."""
    rows = [line.rstrip("\n").split("\t") for line in open(spawn_path) if line.strip()]
    runs = load_jsonl(os.path.join(out, "spawn-rss.jsonl")) + \
        load_jsonl(os.path.join(out, "spawn-nofile.jsonl"))
    by_label = defaultdict(list)
    for r in runs:
        by_label[r["label"]].append(r)
    md = ["## Spawn latency against the supervisor's size and RLIMIT_NOFILE", "",
          "c=1 churn (okd replies and exits); latency is connect→EOF at the client (spawn, exec, "
          "okd's run and exit); usherd's own accept→exec mean is from its "
          "usherd_spawn_duration_seconds metric. Medians over the rounds.", "",
          "| server | setting | measured | rounds | conn/s | p50 ms | p99 ms | accept→exec µs |",
          "|---|---|---|---|---|---|---|---|"]
    groups = defaultdict(list)
    for kind, value, _round, measured, mean_us in rows:
        groups[(kind, value)].append((measured, mean_us))
    for (kind, value), samples in groups.items():
        if kind == "rss":
            label, server, setting = f"rss-{value}", "usherd", f"ballast {value} MiB"
            measured = f"VmRSS {statistics.median(int(m) for m, _ in samples) / 1024:.0f} MiB"
        elif kind == "nofile":
            label, server, setting = f"nofile-{value}", "usherd", f"RLIMIT_NOFILE {value}"
            measured = f"limit {samples[0][0]}"
        else:
            label, server, setting = f"tcpserver-rss-{value}", "tcpserver (fork)", \
                f"ballast {value} MiB"
            measured = f"VmRSS {statistics.median(int(m) for m, _ in samples) / 1024:.0f} MiB"
        lr = by_label.get(label, [])
        means = [float(u) for _, u in samples if u != "nan"]
        mean = f"{statistics.median(means):.0f}" if means else "-"
        if lr:
            md.append(f"| {server} | {setting} | {measured} | {len(lr)} | "
                      f"{med(lr, lambda r: r['conn_per_s']):.0f} | "
                      f"{med(lr, lambda r: r['latency_ms']['p50']):.3f} | "
                      f"{med(lr, lambda r: r['latency_ms']['p99']):.3f} | {mean} |")
    md.append("")
    return md


def drop_outcomes(runs):
    total = defaultdict(int)
    for r in runs:
        total["eof"] += r["finished"]
        for kind, count in r.get("failures", {}).items():
            total[kind] += count
    return ", ".join(f"{k} {v}" for k, v in sorted(total.items()))


def plot(out, groups, servers, concurrencies):
    """Writes plot.dat and plot.png (two panels: conn/s and p99 against concurrency)."""
    dat = os.path.join(out, "plot.dat")
    with open(dat, "w") as f:
        for s in servers:
            f.write(f'"{s}"\n')
            for c in concurrencies:
                runs = groups.get((s, c))
                if runs:
                    f.write(f"{c} {med(runs, lambda r: r['conn_per_s']):.1f} "
                            f"{med(runs, lambda r: r['latency_ms']['p99']):.3f}\n")
            f.write("\n\n")
    script = f"""
set terminal pngcairo size 1200,500 font ",10"
set output "{os.path.join(out, 'plot.png')}"
set multiplot layout 1,2
set logscale x 2
set xrange [0.7:90]
set xtics ({", ".join(str(c) for c in concurrencies)})
set key top left
set grid
set xlabel "concurrency"
set ylabel "connections per second"
set title "Churn: conn/s (median of rounds)"
plot for [i=0:{len(servers) - 1}] "{dat}" index i using 1:2 with linespoints title columnheader(1)
set logscale y
set ylabel "p99 latency, ms"
set title "Churn: p99 connect to EOF (median of rounds)"
plot for [i=0:{len(servers) - 1}] "{dat}" index i using 1:3 with linespoints title columnheader(1)
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"gnuplot failed: {e}", file=sys.stderr)
        return False


if __name__ == "__main__":
    main()

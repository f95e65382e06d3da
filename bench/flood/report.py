#!/usr/bin/python3
"""Turns bench/flood/flood.py's OUT/results.jsonl into OUT/summary.md (the table of figures
per contender and attack) and OUT/plot.png (legitimate users' p99 login time and success
rate over time, one line per contender, one column per attack; gnuplot).

    bench/flood/report.py OUT [--no-plot]

Standard library only (and gnuplot for the plot).
"""

import json
import os
import subprocess
import sys

BUCKET_S = 5.0


def load(out):
    with open(os.path.join(out, "results.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pct(ok, n):
    return f"{100 * ok / n:.0f}% ({ok}/{n})" if n else "-"


def sec(x):
    return "-" if x is None else f"{x:.1f}"


def cpu(x):
    return "-" if x is None else f"{x:.1f}"


def recovery(r):
    if not r["alive_after"]:
        return "**yes**: it exited"
    if r["recovered_after_s"] is None:
        return "**yes**: no login got in afterwards"
    return f"no (next login in {r['recovered_after_s']:.0f} s)"


def table(results):
    rows = ["| attack | contender | legit logins ok | legit p50 / p99 s | admin ok | "
            "admin worst s (unloaded) | peak unauth. sshd | host CPU s / 1000 attack conns "
            "(server's) | peak memory MiB (idle) | manual recovery |",
            "|" + "---|" * 10]
    for r in results:
        rows.append(
            f"| {r['attack']} | {r['contender']} | {pct(r['legit_ok'], r['legit_attempts'])} | "
            f"{sec(r['legit_p50_s'])} / {sec(r['legit_p99_s'])} | "
            f"{pct(r['admin_ok'], r['admin_attempts'])} | "
            f"{sec(r['admin_worst_s'])} ({sec(r['admin_unloaded_s'])}) | "
            f"{r['peak_unauthenticated']} | "
            f"{cpu(r['host_cpu_s_per_1000'])} ({cpu(r['server_cpu_s_per_1000'])}) | "
            f"{r['peak_pss_mib']:.0f} ({r['idle_pss_mib']:.0f}) | {recovery(r)} |")
    return "\n".join(rows)


def details(results):
    rows = ["| attack | contender | attack connections | attacker's counts | server CPU s | "
            "host CPU s | load before | what the legitimate clients saw |", "|" + "---|" * 8]
    for r in results:
        counts = ", ".join(f"{k} {v}" for k, v in r["attack_detail"].items()
                           if k != "connections")
        errors = "; ".join(e.replace("|", "/") for e in r["errors"][:3]) or "-"
        rows.append(f"| {r['attack']} | {r['contender']} | {r['attack_connections']} | {counts} | "
                    f"{r['server_cpu_s']:.1f} | {r['host_cpu_s']:.1f} | "
                    f"{' '.join(r.get('loadavg_before') or [])} | {errors} |")
    return "\n".join(rows)


def slots(results):
    """usherd's startup slots by who got them (from its accept lines), against the attackers'
    share of source blocks (/32: 254 attacking addresses, the user, the admin, the herd)."""
    rows = ["| attack | instances started | attackers' (distinct blocks) | legitimate user | admin "
            "| herd | attackers' share of slots | their share of blocks |", "|" + "---|" * 8]
    for r in results:
        s = r.get("slots")
        if not s:
            continue
        total = s["attack"] + s["legit"] + s["admin"] + s["herd"]
        blocks = s["attack_blocks"] + (s["legit"] > 0) + (s["admin"] > 0) + (s["herd"] > 0)
        share = f"{100 * s['attack'] / total:.0f}%" if total else "-"
        block_share = f"{100 * s['attack_blocks'] / blocks:.0f}%" if blocks else "-"
        rows.append(f"| {r['attack']} | {total} | {s['attack']} ({s['attack_blocks']}) | "
                    f"{s['legit']} | {s['admin']} | {s['herd']} | {share} | {block_share} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def limits(results):
    seen, rows = set(), []
    for r in results:
        if r["contender"] not in seen:
            seen.add(r["contender"])
            rows.append(f"- **{r['contender']}**: {r['limits']}")
    return "\n".join(rows)


def series(r):
    """[(t, p99_s or None, success %)] per BUCKET_S of legitimate logins' start times."""
    buckets = {}
    for t, who, ok, duration in r["timeline"]:
        if who == "legit":
            buckets.setdefault(int((t // BUCKET_S)), []).append((ok, duration))
    out = []
    for b in sorted(buckets):
        logins = buckets[b]
        oks = sorted(d for ok, d in logins if ok)
        p99 = oks[min(len(oks) - 1, int(0.99 * len(oks)))] if oks else None
        out.append(((b + 0.5) * BUCKET_S, p99, 100 * len(oks) / len(logins)))
    return out


def plot(results, out):
    attacks = list(dict.fromkeys(r["attack"] for r in results))
    names = list(dict.fromkeys(r["contender"] for r in results))
    data_dir = os.path.join(out, "plot-data")
    os.makedirs(data_dir, exist_ok=True)
    for r in results:
        with open(os.path.join(data_dir, f"{r['contender']}-{r['attack']}.dat"), "w") as f:
            for t, p99, ok in series(r):
                f.write(f"{t:.2f} {'NaN' if p99 is None else f'{p99:.3f}'} {ok:.1f}\n")
    lines = [
        "set terminal pngcairo size 1500,820 font ',10'",
        f"set output '{os.path.join(out, 'plot.png')}'",
        f"set multiplot layout 2,{len(attacks)} title 'Legitimate logins (127.0.0.2, "
        f"2/s, AuthorizedKeysCommand 1 s) during each attack (shaded), by contender'",
        "set grid", "set key top right font ',9'",
    ]
    for row, (col, label, yrange) in enumerate([(2, "p99 login time (s)", "[0:*]"),
                                                (3, "logins that got in (%)", "[-5:105]")]):
        for attack in attacks:
            attack_s = max(r["phases"]["attack_s"] for r in results if r["attack"] == attack)
            lines.append(f"set object 1 rect from 0, graph 0 to {attack_s:.1f}, graph 1 "
                         "fc rgb '#eeeeee' behind fs solid noborder")
            plots = []
            for i, name in enumerate(names):
                path = os.path.join(data_dir, f"{name}-{attack}.dat")
                if os.path.exists(path):
                    plots.append(f"'{path}' using 1:{col} with linespoints lw 2 pt {i + 5} "
                                 f"ps 0.7 title '{name}'")
            lines += [f"set title 'attack: {attack}'", f"set ylabel '{label}'",
                      "set xlabel 's since the attack started'", f"set yrange {yrange}",
                      "plot " + ", ".join(plots)]
    lines.append("unset multiplot")
    try:
        subprocess.run(["gnuplot"], input="\n".join(lines) + "\n", text=True, check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report: gnuplot failed: {e} {getattr(e, 'stderr', '')}", file=sys.stderr)


def main(argv):
    out = argv[0]
    results = load(out)
    text = "\n\n".join([
        "## Figures\n\n" + table(results),
        "## usherd's startup slots, by who got them\n\n" + slots(results),
        "## Limits each contender ran with\n\n" + limits(results),
        "## Details\n\n" + details(results),
    ]) + "\n"
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    if "--no-plot" not in argv:
        plot(results, out)


if __name__ == "__main__":
    main(sys.argv[1:])

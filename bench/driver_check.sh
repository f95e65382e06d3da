#!/usr/bin/env bash
# CTest's "bench: driver": the full benchmark driver (bench/run.sh) and its summary
# (bench/summarize.py) on usherd alone, every scenario at a size that takes seconds, so the
# command behind `make bench` cannot rot between full runs. No peer is installed or run.
# Passes only if every scenario produced its results with every connection accounted for and
# the summary has every section.
#   bench/driver_check.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/usherd-bench-driver.XXXXXX)
trap 'rm -rf "$out"' EXIT

PEERS="" ROUNDS=2 N=40 HOLD_N=32 CONCURRENCY="1 8" DROP_N=300 SPAWN_N=30 SPAWN_ROUNDS=1 \
  BALLAST_MIB=10 LIVE=40 FLOOD_S=2 STATUS_SAMPLES=3 PLOT=0 LOAD_WAIT_S=0 OUT="$out" \
  "$here/run.sh" "$build" >"$out/stdout" 2>"$out/stderr" || {
  echo "bench/run.sh failed:" >&2
  cat "$out/stderr" >&2
  exit 1
}

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
problems = []

def jsonl(name):
    path = os.path.join(out, name)
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []

def tsv(name):
    path = os.path.join(out, name)
    return [l.rstrip("\n").split("\t") for l in open(path) if l.strip()] if os.path.exists(path) else []

churn = jsonl("churn.jsonl")
want = sorted((r, c) for r in range(2) for c in (1, 8))
if sorted(r["c"] for r in churn) != sorted(c for _, c in want):
    problems.append(f"churn: runs at c={[r['c'] for r in churn]}, expected two rounds of c=1 and 8")
for r in churn + jsonl("hold.jsonl"):
    if r["label"] != "usherd" or r["ok"] != r["n"]:
        problems.append(f"{r['label']} c={r['c']}: {r['ok']}/{r['n']} ok, {r['failures']}")
if len(jsonl("hold.jsonl")) != 2:
    problems.append("hold: expected one run per round")
drop = jsonl("drop.jsonl")
if len(drop) != 2 or any(r["finished"] != 300 or r["failed"] != 0 for r in drop):
    problems.append(f"drop: expected 2 runs of 300 connections, each closed: {drop}")
status = json.load(open(os.path.join(out, "drop-status.json")))
sock = [s for s in status["sockets"] if s["name"] == "bench.socket"][0]
if sock.get("dropped", {}).get("startups-full") != 600:
    problems.append(f"drop: usherd counted {sock.get('dropped')}, expected startups-full 600")
spawn = tsv("spawn.tsv")
kinds = sorted({row[0] for row in spawn})
if "rss" not in kinds or "nofile" not in kinds:
    problems.append(f"spawn: rows {kinds}, expected rss and nofile")
memory = dict((row[0], row[1]) for row in tsv("memory.tsv"))
if memory.get("40") is None or memory.get("0") is None or "hwm" not in memory:
    problems.append(f"memory: rows {memory}, expected 0, 40 live instances and hwm")
status_rows = tsv("status.tsv")
for label in ("ctlping-idle", "usherctl-idle", "ctlping-flood", "usherctl-flood"):
    if sum(1 for row in status_rows if row[0] == label) != 3:
        problems.append(f"status: expected 3 {label} samples")
summary = open(os.path.join(out, "summary.md")).read()
for section in ("## Churn", "## Hold", "## Drop path", "## Spawn latency",
                "## Supervisor memory", "## Status response time"):
    if section not in summary:
        problems.append(f"summary.md has no '{section}' section")
for p in problems:
    print("FAIL", p)
print(f"{sum(r['ok'] for r in churn)} churn connections ok, {len(drop) * 300} dropped, "
      f"{len(spawn)} spawn rows, memory {memory}, {len(status_rows)} status samples")
sys.exit(1 if problems else 0)
PY

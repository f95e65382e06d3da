#!/usr/bin/env bash
# The short benchmark, run by CTest as "bench: smoke": usherd with a bench.socket
# (Accept=yes) whose instances run okd; 200 connections at concurrency 1 and at 8 through
# loadgen. Passes only if every connection read exactly "ok\n" and usherd still answers
# `usherctl status` afterwards with all 400 connections admitted and none dropped.
#   bench/smoke.sh USHERD USHERCTL LOADGEN OKD
set -euo pipefail
USHERD=$(realpath "$1") USHERCTL=$(realpath "$2") LOADGEN=$(realpath "$3") OKD=$(realpath "$4")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"

work=$(mktemp -d /tmp/usherd-bench-smoke.XXXXXX)
cleanup() {
  [[ -n "${USHERD_PID:-}" ]] && stop_pid "$USHERD_PID"
  rm -rf "$work"
}
trap cleanup EXIT

write_usherd_units "$work" "$OKD" 100000
start_usherd "$work"
echo "usherd pid=$USHERD_PID port=$USHERD_PORT"

for c in 1 8; do
  "$LOADGEN" -n 200 -c "$c" -t 30 -T 5000 -e 'ok\n' -l "usherd-c$c" -j "$work/results.jsonl" \
    "127.0.0.1:$USHERD_PORT"
done

status=$("$USHERCTL" --runtime-dir "$work/run" status --json)
python3 - "$work/results.jsonl" "$status" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
status = json.loads(sys.argv[2])
sock = [s for s in status["sockets"] if s["name"] == "bench.socket"][0]
problems = []
for r in runs:
    if r["ok"] != 200 or r["failed"] != 0:
        problems.append(f'{r["label"]}: {r["ok"]}/200 ok, failures {r["failures"]}')
if sum(sock.get("dropped", {}).values()) != 0:
    problems.append(f'usherd dropped connections: {sock["dropped"]}')
if sock.get("accepted", 0) < 400:
    problems.append(f'usherd counted {sock.get("accepted")} accepted connections, expected 400')
for p in problems:
    print("FAIL", p)
print(f'{len(runs) * 200 - sum(200 - r["ok"] for r in runs)} connections ok; '
      f'accepted={sock.get("accepted")} dropped={sock.get("dropped")}')
sys.exit(1 if problems else 0)
PY

#!/usr/bin/env bash
# `make bench-flood`: the flood benchmark (bench/flood/flood.py) over every contender and
# attack, then its table and plot (bench/flood/report.py). About 19 minutes on 2 cores.
#
#   bench/flood/run.sh [BUILD_DIR]          (`make bench-flood` runs it with build-release)
#
# Environment: OUT (results folder, default BUILD_DIR/bench-flood/<UTC stamp>); CONTENDERS
# ("usherd sshd sshd10 xinetd ssa tcpsvd"); ATTACKS ("herd slowdir stall storm"); FLOOD_ARGS (more
# flood.py options, e.g. "--attack-s 40"); USHERD_DEBIAN13_ROOT (a Debian 13 root for sshd10,
# OpenSSH 10 with PerSourcePenalties; default build/debian13-root, made by
# `scripts/debian13-root.sh`; it is only read, through an overlay mount; without it sshd10 is
# skipped with a notice). busybox tcpsvd is built from Debian's source as for `make bench`.
# Needs root. Everything runs on 127.0.0.0/8 and ends by itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(realpath -m "${1:-build-release}")
CONTENDERS=${CONTENDERS:-"usherd sshd sshd10 xinetd ssa tcpsvd"}
ATTACKS=${ATTACKS:-"herd slowdir stall storm"}
FLOOD_ARGS=${FLOOD_ARGS:-}
OUT=$(realpath -m "${OUT:-$build/bench-flood/$(date -u +%Y%m%dT%H%M%SZ)}")
mkdir -p "$OUT"

ninja -C "$build" usherd usherctl >/dev/null
peer_root="$build/bench-peers"
source "$here/../peers.sh"
if [[ " $CONTENDERS " == *" tcpsvd "* && ! -x "$peer_root/tcpsvd/tcpsvd" ]]; then
  mkdir -p "$peer_root/dl"
  build_tcpsvd || echo "bench-flood: building tcpsvd from Debian's busybox source failed" >&2
fi

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "usherd: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "openssh: $(dpkg-query -W -f '${Version}' openssh-server 2>/dev/null)"
  echo "xinetd: $(dpkg-query -W -f '${Version}' xinetd 2>/dev/null)"
  echo "systemd: $(dpkg-query -W -f '${Version}' systemd 2>/dev/null)"
  echo "busybox (tcpsvd): $(cat "$peer_root/tcpsvd/version" 2>/dev/null)"
  echo "load at start (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: flood.py --contenders '$CONTENDERS' --attacks '$ATTACKS' $FLOOD_ARGS"
} >"$OUT/machine.txt"

# shellcheck disable=SC2086
"$here/flood.py" --build "$build" --out "$OUT" --contenders "$CONTENDERS" \
  --attacks "$ATTACKS" $FLOOD_ARGS
"$here/report.py" "$OUT" >/dev/null
echo "bench-flood: $OUT/summary.md, $OUT/plot.png" >&2

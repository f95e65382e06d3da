#!/usr/bin/env bash
# The full benchmark: usherd against peer super-servers from Debian's packages, each on its
# own loopback port, all running the same static okd service with their limits raised.
#
#   bench/run.sh [BUILD_DIR]            (`make bench` runs it with build-release)
#
# Environment: ROUNDS (5), N (3000 connections per churn run), HOLD_N (1280), OUT (results
# folder, default BUILD_DIR/bench-results/<UTC stamp>), PEERS (space-separated subset).
#
# Scenarios, in interleaved rounds (every server once per round, A B C … B C A …):
#   churn  okd replies and exits; N connections at concurrency 1, 8 and 64
#   hold   okd replies and holds the connection 100 ms; HOLD_N connections at concurrency 64
# Then usherd alone:
#   drop   budget full (MaxStartups=1:100:1, one instance that never becomes ready): conn/s
#          of connections usherd accepts and drops
#   memory usherd's VmRSS with 0, 500 and 2000 live instances (okd holding 8 s)
#   status `usherctl status --json` response time idle and during a churn flood at c=64
# Results: OUT/*.jsonl (one loadgen JSON per run), OUT/summary.md (medians over rounds, ratios
# to the best peer in the same run), OUT/plot.png (conn/s and p99 against concurrency).
#
# Every load goes to 127.0.0.1 only (loadgen refuses anything else), bounded in count and
# time. Needs root for apt-get (peers are installed if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(realpath -m "${1:-build-release}")
ROUNDS=${ROUNDS:-5}
N=${N:-3000}
HOLD_N=${HOLD_N:-1280}
PEERS=${PEERS:-"xinetd tcpserver inetd socat ssa tcpsvd"}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$(realpath -m "${OUT:-$build/bench-results/$stamp}")
mkdir -p "$OUT"
work=$(mktemp -d /tmp/usherd-bench.XXXXXX)
peer_root="$build/bench-peers"

ninja -C "$build" usherd usherctl loadgen okd >/dev/null
USHERD="$build/supervisor/usherd"
USHERCTL="$build/supervisor/usherctl"
LOADGEN="$build/bench/loadgen"
OKD="$build/bench/okd"
source "$here/common.sh"
ulimit -n "$(ulimit -Hn)"

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }

# --- peers -----------------------------------------------------------------------------
# xinetd and openbsd-inetd conflict in Debian (both provide inet-superserver), so inetd's
# .deb is unpacked privately under the build directory instead of installed.
install_peers() {
  local missing=()
  command -v xinetd >/dev/null || missing+=(xinetd)
  command -v tcpserver >/dev/null || missing+=(ucspi-tcp)
  command -v socat >/dev/null || missing+=(socat)
  command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
  command -v systemd-socket-activate >/dev/null || missing+=(systemd)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  if [[ ! -x "$peer_root/openbsd-inetd/usr/sbin/inetd" ]]; then
    mkdir -p "$peer_root/dl"
    (cd "$peer_root/dl" && apt-get download -qq openbsd-inetd 2>/dev/null)
    dpkg -x "$peer_root"/dl/openbsd-inetd_*.deb "$peer_root/openbsd-inetd"
  fi
  # busybox tcpsvd: Debian's busybox binaries lack the applet; building it needs Debian's
  # busybox source package, which apt-get source fetches only where deb-src is configured.
  if [[ ! -x "$peer_root/busybox-tcpsvd" ]]; then
    if (cd "$peer_root/dl" && apt-get source -qq busybox >/dev/null 2>&1); then
      build_tcpsvd || log "tcpsvd: building from Debian's busybox source failed; skipped"
    else
      log "tcpsvd: skipped (no deb-src configured, so Debian's busybox source is unavailable)"
    fi
  fi
}

# Builds busybox with only the tcpsvd applet from the unpacked Debian source.
build_tcpsvd() {
  local src
  src=$(find "$peer_root/dl" -maxdepth 1 -type d -name 'busybox-*' | head -1)
  [[ -n "$src" ]] || return 1
  (cd "$src" && make -s allnoconfig >/dev/null &&
    sed -i 's/^# CONFIG_TCPSVD is not set/CONFIG_TCPSVD=y/' .config &&
    make -s -j2 >/dev/null) || return 1
  cp "$src/busybox" "$peer_root/busybox-tcpsvd"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME PORT SERVICE_ARGS...: starts one server on 127.0.0.1:PORT running
# okd SERVICE_ARGS per connection; sets SERVER_PID. usherd is started on port 0 and sets PORT.
start_server() {
  local name=$1 port=$2
  shift 2
  local args="$*" dir="$work/$name"
  mkdir -p "$dir"
  case $name in
    usherd)
      rm -rf "$dir/units" "$dir/run"
      write_usherd_units "$dir" "$OKD${args:+ $args}" 100000
      start_usherd "$dir"
      SERVER_PID=$USHERD_PID
      PORT=$USHERD_PORT
      return
      ;;
    xinetd)
      cat >"$dir/xinetd.conf" <<CONF
defaults
{
}
service hbench
{
    type        = UNLISTED
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = root
    server      = $OKD
$([[ -n $args ]] && echo "    server_args = $args")
    port        = $port
    bind        = 127.0.0.1
    flags       = REUSE
    log_type    = FILE $dir/service.log
    cps         = 100000 1
    instances   = UNLIMITED
    per_source  = UNLIMITED
}
CONF
      xinetd -dontfork -f "$dir/xinetd.conf" -filelog "$dir/daemon.log" 2>>"$dir/stderr" &
      ;;
    inetd)
      echo "127.0.0.1:$port stream tcp nowait.1000000 root $OKD okd $args" >"$dir/inetd.conf"
      "$peer_root/openbsd-inetd/usr/sbin/inetd" -i -q 1024 "$dir/inetd.conf" 2>>"$dir/stderr" &
      ;;
    tcpserver)
      # -H -l0: no DNS (its resolver would query the configured nameserver); -R: no ident.
      # shellcheck disable=SC2086
      tcpserver -c 100000 -b 1024 -H -R -l0 127.0.0.1 "$port" "$OKD" $args 2>>"$dir/stderr" &
      ;;
    socat)
      socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,backlog=1024" \
        "EXEC:$OKD${args:+ $args},nofork" 2>>"$dir/stderr" &
      ;;
    ssa)
      # shellcheck disable=SC2086
      systemd-socket-activate --accept --inetd -l "127.0.0.1:$port" "$OKD" $args \
        2>>"$dir/stderr" &
      ;;
    tcpsvd)
      # shellcheck disable=SC2086
      "$peer_root/busybox-tcpsvd" tcpsvd -c 100000 -b 1024 127.0.0.1 "$port" "$OKD" $args \
        2>>"$dir/stderr" &
      ;;
  esac
  SERVER_PID=$!
  PORT=$port
}

# warm_up PORT: 10 connections at concurrency 1, retried until the server answers (5 s).
warm_up() {
  local i
  for i in $(seq 1 50); do
    "$LOADGEN" -q -n 10 -c 1 -T 5000 -t 10 "127.0.0.1:$1" && return 0
    sleep 0.1
  done
  return 1
}

servers=(usherd)
install_peers
for p in $PEERS; do
  case $p in
    tcpsvd) [[ -x "$peer_root/busybox-tcpsvd" ]] && servers+=(tcpsvd) ;;
    inetd) [[ -x "$peer_root/openbsd-inetd/usr/sbin/inetd" ]] && servers+=(inetd) ;;
    *) servers+=("$p") ;;
  esac
done
declare -A ports
for s in "${servers[@]}"; do ports[$s]=$(free_port); done

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "usherd: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "xinetd: $(dpkg-query -W -f '${Version}' xinetd 2>/dev/null)"
  echo "ucspi-tcp: $(dpkg-query -W -f '${Version}' ucspi-tcp 2>/dev/null)"
  echo "openbsd-inetd: $(dpkg-deb -f "$peer_root"/dl/openbsd-inetd_*.deb Version 2>/dev/null)"
  echo "socat: $(dpkg-query -W -f '${Version}' socat 2>/dev/null)"
  echo "systemd: $(dpkg-query -W -f '${Version}' systemd 2>/dev/null)"
  echo "rounds: $ROUNDS, churn N=$N, hold N=$HOLD_N"
  echo "servers: ${servers[*]}"
} >"$OUT/machine.txt"
log "servers: ${servers[*]}; $ROUNDS rounds; results in $OUT"

# --- interleaved rounds ----------------------------------------------------------------
# Each round starts one server further along, so no server always runs first (right after
# the previous round's heaviest load, or always in the same slot of a noisy neighbour's work).
for round in $(seq 1 "$ROUNDS"); do
  count=${#servers[@]}
  for ((j = 0; j < count; ++j)); do
    s=${servers[$(((j + round - 1) % count))]}
    start_server "$s" "${ports[$s]}"
    warm_up "$PORT" || log "$s did not answer the warm-up"
    for c in 1 8 64; do
      "$LOADGEN" -q -n "$N" -c "$c" -t 60 -T 5000 -e 'ok\n' -l "$s" -j "$OUT/churn.jsonl" \
        "127.0.0.1:$PORT" || true
    done
    stop_pid "$SERVER_PID"
    start_server "$s" "${ports[$s]}" --hold-ms 100
    warm_up "$PORT" || log "$s (hold) did not answer the warm-up"
    "$LOADGEN" -q -n "$HOLD_N" -c 64 -t 60 -T 5000 -e 'ok\n' -l "$s" -j "$OUT/hold.jsonl" \
      "127.0.0.1:$PORT" || true
    stop_pid "$SERVER_PID"
  done
  log "round $round of $ROUNDS done"
done

# --- usherd alone: drop path ------------------------------------------------------------
# One instance that never sends READY=1 fills MaxStartups=1:100:1; every further connection
# is accepted and dropped. The first connection is held open by a background loadgen.
drop_dir="$work/drop"
mkdir -p "$drop_dir"
write_usherd_units "$drop_dir" "$OKD --silent --hold-ms 600000" 1:100:1 'Type=notify\n'
printf 'StartupTimeoutSec=600\n' >>"$drop_dir/usherd.conf"
start_usherd "$drop_dir"
"$LOADGEN" -q -n 1 -c 1 -T 120000 "127.0.0.1:$USHERD_PORT" &
holder=$!
for i in $(seq 1 100); do
  current=$("$USHERCTL" --runtime-dir "$drop_dir/run" status --json | json_get 'd["startups"]["current"]')
  [[ "$current" == 1 ]] && break
  sleep 0.05
done
for round in $(seq 1 "$ROUNDS"); do
  "$LOADGEN" -q -n 20000 -c 64 -t 30 -T 5000 -l usherd-drop -j "$OUT/drop.jsonl" \
    "127.0.0.1:$USHERD_PORT" || true
done
"$USHERCTL" --runtime-dir "$drop_dir/run" status --json >"$OUT/drop-status.json"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
stop_pid "$USHERD_PID"
log "drop path done"

# --- usherd alone: memory per live instance ---------------------------------------------
mem_dir="$work/memory"
mkdir -p "$mem_dir"
write_usherd_units "$mem_dir" "$OKD --hold-ms 8000" 100000
start_usherd "$mem_dir"
"$LOADGEN" -q -n 20 -c 1 "127.0.0.1:$USHERD_PORT" >/dev/null || true
: >"$OUT/memory.tsv"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$USHERD_PID/status"; }
instances_now() {
  "$USHERCTL" --runtime-dir "$mem_dir/run" status --json | json_get 'len(d.get("instances", []))'
}
# The 20 warm-up instances hold for 8 s; wait for them to end before the idle reading.
for i in $(seq 1 300); do
  [[ "$(instances_now)" == 0 ]] && break
  sleep 0.1
done
echo -e "0\t$(rss_kib)" >>"$OUT/memory.tsv"
for k in 500 2000; do
  "$LOADGEN" -q -n "$k" -c "$k" -t 60 -T 60000 "127.0.0.1:$USHERD_PORT" &
  gen=$!
  live=0
  for i in $(seq 1 300); do
    live=$(instances_now)
    ((live >= k)) && break
    sleep 0.1
  done
  echo -e "$live\t$(rss_kib)" >>"$OUT/memory.tsv"
  wait "$gen" || true
  for i in $(seq 1 300); do
    [[ "$(instances_now)" == 0 ]] && break
    sleep 0.1
  done
done
echo -e "hwm\t$(awk '/^VmHWM:/ {print $2}' "/proc/$USHERD_PID/status")" >>"$OUT/memory.tsv"
stop_pid "$USHERD_PID"
log "memory done"

# --- usherd alone: usherctl status response time, idle and during a flood ---------------
st_dir="$work/status"
mkdir -p "$st_dir"
write_usherd_units "$st_dir" "$OKD" 100000
start_usherd "$st_dir"
time_status() {
  local label=$1 count=$2 t0 t1
  for i in $(seq 1 "$count"); do
    t0=$(date +%s%N)
    "$USHERCTL" --runtime-dir "$st_dir/run" status --json >/dev/null
    t1=$(date +%s%N)
    echo -e "$label\t$(((t1 - t0) / 1000))" >>"$OUT/status.tsv"
  done
}
: >"$OUT/status.tsv"
time_status idle 30
"$LOADGEN" -q -n 200000 -c 64 -t 12 -T 5000 -l usherd-flood -j "$OUT/flood.jsonl" \
  "127.0.0.1:$USHERD_PORT" &
gen=$!
sleep 1  # let the flood reach a steady state before sampling
time_status flood 30
wait "$gen" || true
stop_pid "$USHERD_PID"
log "status timing done"

rm -rf "$work"
python3 "$here/summarize.py" "$OUT"
log "summary: $OUT/summary.md, plot: $OUT/plot.png"

#!/usr/bin/env bash
# The full benchmark: usherd against peer super-servers from Debian's packages, each on its
# own loopback port, all running the same static okd service with their limits raised.
#
#   bench/run.sh [BUILD_DIR]            (`make bench` runs it with build-release)
#
# Environment: ROUNDS (7), N (3000 connections per churn run), HOLD_N (1280), OUT (results
# folder, default BUILD_DIR/bench-results/<UTC stamp>), PEERS (a space-separated subset of
# "tcpsvd xinetd tcpserver inetd socat ssa"; empty: usherd alone), LOAD_MAX (0.7) and
# LOAD_WAIT_S (900): before starting, wait up to LOAD_WAIT_S for the 1-minute load average
# to fall below LOAD_MAX (the machine may be shared); the load seen is recorded either way.
# LIVE (10000): live instances of the memory scenario.
# SCENARIOS ("churn hold drop spawn memory status"): which scenarios to run; CONCURRENCY
# ("1 8 64"): the churn concurrencies. BASELINE: the path of another usherd binary (a build
# of an earlier commit) run in the rounds as server "usherd-baseline", to measure a change
# against the same peers in the same run. Sizes, for a short run (CTest's "bench: driver"
# runs every scenario in seconds): DROP_N (20000), SPAWN_N (2000), SPAWN_ROUNDS (3),
# BALLAST_MIB ("10 100 1024"), FLOOD_S (14), STATUS_SAMPLES (30); PLOT (1): 0 skips the
# gnuplot figure. Only the peers named (and tcpserver for the spawn scenario's contrast, if
# installed) are installed.
#
# Scenarios, in interleaved rounds (every server once per round, A B C … B C A …):
#   churn  okd replies and exits; N connections at concurrency 1, 8 and 64
#   hold   okd replies and holds the connection 100 ms; HOLD_N connections at concurrency 64
# Then usherd alone (tcpserver, fork-based, alongside in rss for contrast):
#   drop   budget full (MaxStartups=1:100:1, one instance that never becomes ready): conn/s
#          of connections usherd accepts and drops
#   rss    spawn latency at c=1 with usherd's resident memory at 10, 100 and 1024 MiB (an
#          LD_PRELOAD ballast, bench/ballast_preload.cpp, touched before usherd starts)
#   nofile spawn latency at c=1 with usherd's RLIMIT_NOFILE at 1024, 4096 and the hard maximum
#   memory usherd's VmRSS idle and with 2000 and LIVE live instances (okd holding)
#   status usherd's control-socket response time (ctlping: connect to EOF, in one process)
#          and `usherctl status --json` wall time, idle and during a churn flood at c=64
# Results: OUT/*.jsonl (one loadgen JSON per run), OUT/*.tsv, OUT/summary.md (medians over
# rounds, ratios to the best peer in the same run), OUT/plot.png.
#
# Every load goes to 127.0.0.1 only (loadgen refuses anything else), bounded in count and
# time. Needs root for apt-get (peers are installed if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(realpath -m "${1:-build-release}")
ROUNDS=${ROUNDS:-7}
N=${N:-3000}
HOLD_N=${HOLD_N:-1280}
LIVE=${LIVE:-10000}
LOAD_MAX=${LOAD_MAX:-0.7}
LOAD_WAIT_S=${LOAD_WAIT_S:-900}
PEERS=${PEERS-"tcpsvd xinetd tcpserver inetd socat ssa"}
SCENARIOS=${SCENARIOS:-"churn hold drop spawn memory status"}
CONCURRENCY=${CONCURRENCY:-"1 8 64"}
BASELINE=${BASELINE:-}
DROP_N=${DROP_N:-20000}
SPAWN_N=${SPAWN_N:-2000}
SPAWN_ROUNDS=${SPAWN_ROUNDS:-3}
BALLAST_MIB=${BALLAST_MIB:-"10 100 1024"}
FLOOD_S=${FLOOD_S:-14}
STATUS_SAMPLES=${STATUS_SAMPLES:-30}
PLOT=${PLOT:-1}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
has_peer() { [[ " $PEERS " == *" $1 "* ]]; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$(realpath -m "${OUT:-$build/bench-results/$stamp}")
mkdir -p "$OUT"
work=$(mktemp -d /tmp/usherd-bench.XXXXXX)
peer_root="$build/bench-peers"

ninja -C "$build" usherd usherctl loadgen okd ctlping ballast >/dev/null
USHERD="$build/supervisor/usherd"
USHERCTL="$build/supervisor/usherctl"
LOADGEN="$build/bench/loadgen"
OKD="$build/bench/okd"
CTLPING="$build/bench/ctlping"
BALLAST="$build/bench/libballast.so"
source "$here/common.sh"
source "$here/peers.sh"
ulimit -n "$(ulimit -Hn)"

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- peers -----------------------------------------------------------------------------
# xinetd and openbsd-inetd conflict in Debian (both provide inet-superserver), so inetd's
# .deb is unpacked privately under the build directory instead of installed.
install_peers() {
  local missing=()
  has_peer xinetd && ! command -v xinetd >/dev/null && missing+=(xinetd)
  has_peer tcpserver && ! command -v tcpserver >/dev/null && missing+=(ucspi-tcp)
  has_peer socat && ! command -v socat >/dev/null && missing+=(socat)
  has_peer ssa && ! command -v systemd-socket-activate >/dev/null && missing+=(systemd)
  has_peer tcpsvd && ! command -v dpkg-source >/dev/null && missing+=(dpkg-dev)
  ((PLOT)) && ! command -v gnuplot >/dev/null && missing+=(gnuplot-nox)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  mkdir -p "$peer_root/dl"
  if has_peer inetd && [[ ! -x "$peer_root/openbsd-inetd/usr/sbin/inetd" ]]; then
    (cd "$peer_root/dl" && apt-get download -qq openbsd-inetd 2>/dev/null)
    dpkg -x "$peer_root"/dl/openbsd-inetd_*.deb "$peer_root/openbsd-inetd"
  fi
  if has_peer tcpsvd && [[ ! -x "$peer_root/tcpsvd/tcpsvd" ]]; then
    build_tcpsvd || log "tcpsvd: building it from Debian's busybox source failed; skipped"
  fi
}

# free_port: a free loopback port below the ephemeral range. A port from that range could
# be taken, between runs, as the source port of one of the load generator's many client
# connections, and the server's bind() would then fail with EADDRINUSE.
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(10000, max(10001, low))
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
PY
}

# start_server NAME PORT SERVICE_ARGS...: starts one server on 127.0.0.1:PORT running
# okd SERVICE_ARGS per connection; sets SERVER_PID. usherd is started on port 0 and sets PORT.
start_server() {
  local name=$1 port=$2
  shift 2
  local args="$*" dir="$work/$name"
  mkdir -p "$dir"
  case $name in
    usherd | usherd-baseline)
      rm -rf "$dir/units" "$dir/run"
      write_usherd_units "$dir" "$OKD${args:+ $args}" 100000
      # start_usherd runs $USHERD: the baseline binary for usherd-baseline.
      local USHERD=$USHERD
      [[ $name == usherd-baseline ]] && USHERD=$BASELINE
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
      "$peer_root/tcpsvd/tcpsvd" -c 100000 -b 1024 127.0.0.1 "$port" "$OKD" $args \
        2>>"$dir/stderr" &
      ;;
  esac
  SERVER_PID=$!
  PORT=$port
}

# warm_up PORT: 10 connections at concurrency 1, retried until the server answers (5 s).
warm_up() {
  for _ in $(seq 1 50); do
    "$LOADGEN" -q -n 10 -c 1 -T 5000 -t 10 "127.0.0.1:$1" && return 0
    sleep 0.1
  done
  return 1
}

# wait_for_quiet: the suite measures CPU-bound work on a machine that may be shared.
wait_for_quiet() {
  local waited=0
  while awk -v max="$LOAD_MAX" '{exit !($1 > max)}' /proc/loadavg && ((waited < LOAD_WAIT_S)); do
    ((waited == 0)) && log "load $(loadavg) is above $LOAD_MAX; waiting up to ${LOAD_WAIT_S}s"
    sleep 30
    waited=$((waited + 30))
  done
  log "load before the run: $(loadavg) (waited ${waited}s)"
}

servers=(usherd)
if [[ -n "$BASELINE" ]]; then
  [[ -x "$BASELINE" ]] || { echo "BASELINE=$BASELINE is not an executable" >&2; exit 2; }
  servers+=(usherd-baseline)
fi
install_peers
for p in $PEERS; do
  case $p in
    tcpsvd) [[ -x "$peer_root/tcpsvd/tcpsvd" ]] && servers+=(tcpsvd) ;;
    inetd) [[ -x "$peer_root/openbsd-inetd/usr/sbin/inetd" ]] && servers+=(inetd) ;;
    *) servers+=("$p") ;;
  esac
done
declare -A ports
for s in "${servers[@]}"; do ports[$s]=$(free_port); done

wait_for_quiet
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "usherd: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "busybox (tcpsvd): $(cat "$peer_root/tcpsvd/version" 2>/dev/null)"
  echo "xinetd: $(dpkg-query -W -f '${Version}' xinetd 2>/dev/null)"
  echo "ucspi-tcp: $(dpkg-query -W -f '${Version}' ucspi-tcp 2>/dev/null)"
  echo "openbsd-inetd: $(dpkg-deb -f "$peer_root"/dl/openbsd-inetd_*.deb Version 2>/dev/null)"
  echo "socat: $(dpkg-query -W -f '${Version}' socat 2>/dev/null)"
  echo "systemd: $(dpkg-query -W -f '${Version}' systemd 2>/dev/null)"
  echo "rounds: $ROUNDS, churn N=$N at c=$CONCURRENCY, hold N=$HOLD_N"
  echo "scenarios: $SCENARIOS"
  [[ -n "$BASELINE" ]] && echo "usherd-baseline: $BASELINE"
  echo "servers: ${servers[*]}"
  echo "load at start (1/5/15 min): $(loadavg)"
} >"$OUT/machine.txt"
log "servers: ${servers[*]}; $ROUNDS rounds; results in $OUT"

# --- interleaved rounds ----------------------------------------------------------------
# Each round starts one server further along, so no server always runs first (right after
# the previous round's heaviest load, or always in the same slot of a noisy neighbour's work).
: >"$OUT/load.tsv"
for round in $(seq 1 "$ROUNDS"); do
  count=${#servers[@]}
  for ((j = 0; j < count; ++j)); do
    s=${servers[$(((j + round - 1) % count))]}
    if want churn; then
      start_server "$s" "${ports[$s]}"
      warm_up "$PORT" || log "$s did not answer the warm-up"
      for c in $CONCURRENCY; do
        "$LOADGEN" -q -n "$N" -c "$c" -t 60 -T 5000 -e 'ok\n' -l "$s" -j "$OUT/churn.jsonl" \
          "127.0.0.1:$PORT" || true
      done
      stop_pid "$SERVER_PID"
    fi
    if want hold; then
      start_server "$s" "${ports[$s]}" --hold-ms 100
      warm_up "$PORT" || log "$s (hold) did not answer the warm-up"
      "$LOADGEN" -q -n "$HOLD_N" -c 64 -t 60 -T 5000 -e 'ok\n' -l "$s" -j "$OUT/hold.jsonl" \
        "127.0.0.1:$PORT" || true
      stop_pid "$SERVER_PID"
    fi
  done
  echo -e "round $round\t$(loadavg)" >>"$OUT/load.tsv"
  log "round $round of $ROUNDS done (load $(loadavg))"
done

# --- usherd alone: drop path ------------------------------------------------------------
if want drop; then
  # One instance that never sends READY=1 fills MaxStartups=1:100:1; every further connection
  # is accepted and dropped. The first connection is held open by a background loadgen.
  drop_dir="$work/drop"
  mkdir -p "$drop_dir"
  write_usherd_units "$drop_dir" "$OKD --silent --hold-ms 600000" 1:100:1 'Type=notify\n'
  # The drop path itself: refused at once, not parked in the waiting room.
  printf 'StartupTimeoutSec=600\nWaitingRoom=no\n' >>"$drop_dir/usherd.conf"
  start_usherd "$drop_dir"
  "$LOADGEN" -q -n 1 -c 1 -T 120000 "127.0.0.1:$USHERD_PORT" &
  holder=$!
  for _ in $(seq 1 100); do
    current=$("$USHERCTL" --runtime-dir "$drop_dir/run" status --json | json_get 'd["startups"]["current"]')
    [[ "$current" == 1 ]] && break
    sleep 0.05
  done
  for round in $(seq 1 "$ROUNDS"); do
    "$LOADGEN" -q -n "$DROP_N" -c 64 -t 30 -T 5000 -l usherd-drop -j "$OUT/drop.jsonl" \
      "127.0.0.1:$USHERD_PORT" || true
  done
  "$USHERCTL" --runtime-dir "$drop_dir/run" status --json >"$OUT/drop-status.json"
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  stop_pid "$USHERD_PID"
  log "drop path done"
fi

# --- spawn latency against the supervisor's size and RLIMIT_NOFILE ------------------------
# rss_kib PID: resident memory of a process in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
if want spawn; then
  # spawn_mean_us RUNTIME: usherd's own mean accept-to-exec time so far, in µs (its metrics).
  spawn_mean_us() {
    "$USHERCTL" --runtime-dir "$1" metrics | awk '
      /^usherd_spawn_duration_seconds_sum/ {s=$2} /^usherd_spawn_duration_seconds_count/ {n=$2}
      END {if (n > 0) printf "%.1f", s / n * 1e6; else print "nan"}'
  }
    : >"$OUT/spawn.tsv"
  for round in $(seq 1 "$SPAWN_ROUNDS"); do
    for mib in $BALLAST_MIB; do
      dir="$work/rss-$mib"
      rm -rf "$dir" && mkdir -p "$dir"
      write_usherd_units "$dir" "$OKD" 100000
      USHERD_PREFIX="env USHERD_BENCH_BALLAST_MIB=$mib LD_PRELOAD=$BALLAST" start_usherd "$dir"
      warm_up "$USHERD_PORT" || true
      rss=$(rss_kib "$USHERD_PID")
      "$LOADGEN" -q -n "$SPAWN_N" -c 1 -t 60 -T 5000 -e 'ok\n' -l "rss-$mib" \
        -j "$OUT/spawn-rss.jsonl" "127.0.0.1:$USHERD_PORT" || true
      echo -e "rss\t$mib\t$round\t$rss\t$(spawn_mean_us "$dir/run")" >>"$OUT/spawn.tsv"
      stop_pid "$USHERD_PID"
    done
    hard=$(ulimit -Hn)
    limits="1024 4096"
    ((hard > 4096)) && limits+=" $hard"
    for lim in $limits; do
      dir="$work/nofile-$lim"
      rm -rf "$dir" && mkdir -p "$dir"
      write_usherd_units "$dir" "$OKD" 100000
      # usherd raises its soft limit to the hard one at start: both are set to lim here.
      USHERD_PREFIX="prlimit --nofile=$lim:$lim" start_usherd "$dir"
      warm_up "$USHERD_PORT" || true
      actual=$(awk '/^Max open files/ {print $4}' "/proc/$USHERD_PID/limits")
      "$LOADGEN" -q -n "$SPAWN_N" -c 1 -t 60 -T 5000 -e 'ok\n' -l "nofile-$lim" \
        -j "$OUT/spawn-nofile.jsonl" "127.0.0.1:$USHERD_PORT" || true
      echo -e "nofile\t$lim\t$round\t$actual\t$(spawn_mean_us "$dir/run")" >>"$OUT/spawn.tsv"
      stop_pid "$USHERD_PID"
    done
  done
  # For contrast, a fork()-based server given the same ballast (fewer connections: each fork
  # copies the page tables of the whole ballast).
  for mib in $BALLAST_MIB; do
    command -v tcpserver >/dev/null || break
    port=$(free_port)
    env USHERD_BENCH_BALLAST_MIB="$mib" LD_PRELOAD="$BALLAST" \
      tcpserver -c 100000 -b 1024 -H -R -l0 127.0.0.1 "$port" "$OKD" 2>>"$work/tcpserver-rss.err" &
    pid=$!
    warm_up "$port" || true
    "$LOADGEN" -q -n 300 -c 1 -t 60 -T 5000 -e 'ok\n' -l "tcpserver-rss-$mib" \
      -j "$OUT/spawn-rss.jsonl" "127.0.0.1:$port" || true
    echo -e "tcpserver-rss\t$mib\t1\t$(rss_kib "$pid")\tnan" >>"$OUT/spawn.tsv"
    stop_pid "$pid"
  done
  log "spawn latency against RSS and RLIMIT_NOFILE done"
fi

# --- usherd alone: memory per live instance ---------------------------------------------
if want memory; then
  mem_dir="$work/memory"
  mkdir -p "$mem_dir"
  write_usherd_units "$mem_dir" "$OKD --hold-ms 120000" 100000
  start_usherd "$mem_dir"
  # A few instances first, so the idle reading is of a usherd that has served (allocator and
  # tables warm); the client gives up on them after 1 s and they are stopped below.
  "$LOADGEN" -q -n 20 -c 20 -T 1000 "127.0.0.1:$USHERD_PORT" >/dev/null || true
  : >"$OUT/memory.tsv"
  instances_now() {
    "$USHERCTL" --runtime-dir "$mem_dir/run" status --json | json_get 'len(d.get("instances", []))'
  }
  # stop_instances: SIGTERM to every okd usherd started; usherd sees them end.
  stop_instances() {
    local child
    for child in $(cat /proc/"$USHERD_PID"/task/*/children 2>/dev/null); do
      kill "$child" 2>/dev/null || true
    done
  }
  stop_instances
  for _ in $(seq 1 300); do
    [[ "$(instances_now)" == 0 ]] && break
    sleep 0.1
  done
  echo -e "0\t$(rss_kib "$USHERD_PID")" >>"$OUT/memory.tsv"
  sizes="2000 $LIVE"
  ((LIVE <= 2000)) && sizes=$LIVE
  for k in $sizes; do
    # The connections ramp up as fast as usherd spawns (SYNs beyond the backlog are retried by
    # the kernel); okd holds each for 120 s, far longer than the ramp.
    "$LOADGEN" -q -n "$k" -c "$k" -t 200 -T 180000 "127.0.0.1:$USHERD_PORT" &
    gen=$!
    live=0
    for _ in $(seq 1 600); do
      live=$(instances_now)
      ((live >= k)) && break
      sleep 0.2
    done
    echo -e "$live\t$(rss_kib "$USHERD_PID")" >>"$OUT/memory.tsv"
    log "memory: $live live instances, usherd VmRSS $(rss_kib "$USHERD_PID") KiB"
    stop_instances
    wait "$gen" || true
    for _ in $(seq 1 600); do
      [[ "$(instances_now)" == 0 ]] && break
      sleep 0.2
    done
  done
  echo -e "hwm\t$(awk '/^VmHWM:/ {print $2}' "/proc/$USHERD_PID/status")" >>"$OUT/memory.tsv"
  stop_pid "$USHERD_PID"
  log "memory done"
fi

# --- usherd alone: control response time, idle and during a flood -----------------------
if want status; then
  st_dir="$work/status"
  mkdir -p "$st_dir"
  write_usherd_units "$st_dir" "$OKD" 100000
  start_usherd "$st_dir"
  time_usherctl() {
    local label=$1 count=$2 t0 t1
    for _ in $(seq 1 "$count"); do
      t0=$(date +%s%N)
      "$USHERCTL" --runtime-dir "$st_dir/run" status --json >/dev/null
      t1=$(date +%s%N)
      echo -e "usherctl-$label\t$(((t1 - t0) / 1000))" >>"$OUT/status.tsv"
    done
  }
  time_ctlping() {
    "$CTLPING" "$st_dir/run" "$2" | awk -v l="ctlping-$1" '{print l "\t" $1}' >>"$OUT/status.tsv"
  }
  : >"$OUT/status.tsv"
  time_ctlping idle "$STATUS_SAMPLES"
  time_usherctl idle "$STATUS_SAMPLES"
  "$LOADGEN" -q -n 400000 -c 64 -t "$FLOOD_S" -T 5000 -l usherd-flood -j "$OUT/flood.jsonl" \
    "127.0.0.1:$USHERD_PORT" &
  gen=$!
  sleep 1 # let the flood reach a steady state before sampling
  time_ctlping flood "$STATUS_SAMPLES"
  time_usherctl flood "$STATUS_SAMPLES"
  wait "$gen" || true
  stop_pid "$USHERD_PID"
  log "status timing done"
fi

echo "load at end (1/5/15 min): $(loadavg)" >>"$OUT/machine.txt"
rm -rf "$work"
PLOT=$PLOT python3 "$here/summarize.py" "$OUT"
log "summary: $OUT/summary.md$( ((PLOT)) && echo ", plot: $OUT/plot.png")"

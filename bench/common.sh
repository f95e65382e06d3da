# Shell helpers shared by bench/run.sh and bench/smoke.sh: start usherd on a private runtime
# directory with units bound to port 0, wait until it serves, read its bound port, stop it.
# Sourced, not run. Needs python3 (JSON) and the usherd/usherctl binaries in $USHERD and
# $USHERCTL.

# json_get EXPR: evaluates a Python expression over the JSON document on stdin, bound to `d`.
json_get() {
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# write_usherd_units DIR SERVICE_EXEC MAX_STARTUPS [SERVICE_EXTRA]: a bench.socket with
# Accept=yes on 127.0.0.1:0 and its bench@.service template, plus usherd.conf.
write_usherd_units() {
  local dir=$1 exec_line=$2 max_startups=$3 extra=${4:-}
  mkdir -p "$dir/units"
  cat >"$dir/units/bench.socket" <<UNIT
[Socket]
ListenStream=127.0.0.1:0
Accept=yes
Backlog=4096
MaxConnections=100000
UNIT
  printf '[Service]\nExecStart=%s\nStandardInput=socket\n%b' "$exec_line" "$extra" \
    >"$dir/units/bench@.service"
  printf '[Policy]\nMaxStartups=%s\n' "$max_startups" >"$dir/usherd.conf"
}

# start_usherd DIR: starts usherd in the background on DIR's units; sets USHERD_PID and
# USHERD_PORT once `usherctl status` lists the bound port (usherd at --log-level warning
# prints nothing when it starts, so the control socket is the readiness signal).
# USHERD_PREFIX, if set, is a command that execs usherd (env VAR=..., prlimit ...), so the
# pid stays usherd's and nothing else started here inherits it.
start_usherd() {
  local dir=$1 status i
  mkdir -p "$dir/run"
  # shellcheck disable=SC2086
  ${USHERD_PREFIX:-} "$USHERD" --units "$dir/units" --config "$dir/usherd.conf" \
    --runtime-dir "$dir/run" --log-level warning 2>>"$dir/usherd.log" &
  USHERD_PID=$!
  USHERD_PORT=
  for i in $(seq 1 200); do
    if ! kill -0 "$USHERD_PID" 2>/dev/null; then
      echo "usherd exited during start-up; log:" >&2
      cat "$dir/usherd.log" >&2
      return 1
    fi
    if status=$("$USHERCTL" --runtime-dir "$dir/run" status --json 2>/dev/null); then
      USHERD_PORT=$(echo "$status" | json_get \
        '[s for s in d["sockets"] if s["name"]=="bench.socket"][0]["listen"][0].rpartition(":")[2]' \
        2>/dev/null) || USHERD_PORT=
      [[ "$USHERD_PORT" =~ ^[0-9]+$ && "$USHERD_PORT" != 0 ]] && return 0
    fi
    sleep 0.05
  done
  echo "usherd did not list a bound port within 10 s; log:" >&2
  cat "$dir/usherd.log" >&2
  return 1
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; waits for it.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

#!/usr/bin/env bash
# A real systemd as PID 1, for what needs a service manager (usherd as usherd.service,
# journald's fields): boots the Debian 13 root of scripts/debian-root.sh (or the Debian 12
# one, USHERD_DEBIAN_RELEASE=12) with
# systemd-nspawn, waits until `systemctl is-system-running` answers, runs a command on the
# host while the container is up, then powers the container off.
#
#   scripts/systemd-bed.sh           the systemd tests, tests/systemd/test_*.py (`make test-systemd`):
#                                    usherd as usherd.service, and its Debian package installed,
#                                    serving Debian's own ssh units, and purged
#   scripts/systemd-bed.sh CMD...    CMD instead (e.g. bash, to look around)
#
# CMD runs on the host with USHERD_SYSTEMD_PID1 (the container's PID 1 as the host sees it:
# `nsenter -t "$USHERD_SYSTEMD_PID1" -a CMD` runs CMD inside, in all its namespaces),
# USHERD_SYSTEMD_ROOT (the root's path on the host) and USHERD_SYSTEMD_CHECKOUT (the copy of
# the checkout inside, built there for Debian 13: the tests install that build).
#
# Before the boot, through debian-root.sh (its mounts, its lock, its copy of the checkout):
# the packages of the suite, plus systemd-sysv and dbus, are installed in the root, and
# usherd and its package are built there. Then, holding the root's lock for as long as the container runs:
#   systemd-nspawn --keep-unit --register=no -D ROOT --boot --console=pipe --private-network
# --keep-unit --register=no: the host has no systemd (nspawn fails "Failed to open system
# bus" without them). --private-network: the container gets a loopback of its own, so the
# daemons Debian starts at boot (ssh.service on port 22, ...) and the units under test never
# take a port on the host's loopback, where other suites run. The boot log goes to
# ROOT.boot.log. Every wait is bounded and polls for its event (PID 1 appearing,
# `systemctl is-system-running --wait` answering, nspawn exiting); each phase's time is
# printed as "systemd-bed: time PHASE Ns".
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
# USHERD_DEBIAN_RELEASE=12 boots the Debian 12 root (systemd 252) instead (`make
# test-systemd12`); everything else is the same.
export USHERD_DEBIAN_RELEASE="${USHERD_DEBIAN_RELEASE:-13}"
root="$("$here/scripts/debian-root.sh" path)"
checkout_in_root=/root/usherd
boot_timeout_s=${USHERD_SYSTEMD_BOOT_TIMEOUT:-120}
poweroff_timeout_s=60

say() { echo "systemd-bed: $*" >&2; }
die() { say "$*"; exit 1; }
times=()
phase() { phase_name="$1"; phase_start_ns=$(date +%s%N); }
phase_end() {
  local s=$((($(date +%s%N) - phase_start_ns) / 1000000000))
  times+=("$phase_name=${s}s")
  say "time $phase_name ${s}s"
}
now_s() { date +%s; }

[ "$(id -u)" -eq 0 ] || die "needs root (systemd-nspawn, nsenter)"
"$here/scripts/install-deps.sh" beds

phase prepare-root
# The root's own `make build` installs what the build needs; the tests need the suite's
# daemons and clients too (git, rsync for the examples), and the container needs an init.
"$here/scripts/debian-root.sh" run \
    env DEB_BUILD_OPTIONS="${USHERD_DEB_BUILD_OPTIONS:-}" sh -c '
  scripts/install-deps.sh all
  for p in systemd-sysv dbus; do
    dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing-} $p"
  done
  if [ -n "${missing-}" ]; then
    echo "systemd-bed: installing in the root:$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
  make build >/tmp/usherd-build.log 2>&1 || { tail -n 40 /tmp/usherd-build.log >&2; exit 1; }
  # The package for tests/systemd/test_package.py: the one `make test-debian13` built (with
  # the same USHERD_DEB_BUILD_OPTIONS), unless a source is newer (the copy of the checkout
  # gets the time of its sync when it changes).
  scripts/package.sh >/tmp/usherd-package.log 2>&1 || { tail -n 40 /tmp/usherd-package.log >&2; exit 1; }'
phase_end

exec 9>"$root.lock"
flock -n 9 || die "$root is in use (debian13-root.sh or another container holds $root.lock)"
if awk -v r="$root" 'index($5, r "/") == 1 || $5 == r { found = 1 } END { exit !found }' \
    /proc/self/mountinfo; then
  die "something is mounted under $root; not booting it"
fi

nspawn_pid=""
pid1=""
boot_log="$root.boot.log"

# The container's PID 1: the descendant of nspawn whose pid in its own namespace is 1.
find_pid1() {
  local todo=("$nspawn_pid") p c
  while [ ${#todo[@]} -gt 0 ]; do
    p="${todo[0]}"; todo=("${todo[@]:1}")
    if [ "$p" != "$nspawn_pid" ] &&
        awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$p/status" 2>/dev/null; then
      echo "$p"; return 0
    fi
    for c in $(cat "/proc/$p/task/"*/children 2>/dev/null); do todo+=("$c"); done
  done
  return 1
}

poweroff() {
  if [ -n "${command_pid:-}" ] && kill -0 "$command_pid" 2>/dev/null; then
    kill -TERM "$command_pid" 2>/dev/null || true
  fi
  [ -n "$nspawn_pid" ] || return 0
  kill -0 "$nspawn_pid" 2>/dev/null || { wait "$nspawn_pid" 2>/dev/null || true; return 0; }
  phase poweroff
  if [ -n "$pid1" ]; then
    nsenter -t "$pid1" -a systemctl poweroff --no-block 2>/dev/null ||
      kill -TERM "$nspawn_pid" 2>/dev/null || true  # nspawn: SIGTERM = orderly shutdown
  else
    kill -TERM "$nspawn_pid" 2>/dev/null || true
  fi
  local deadline=$(($(now_s) + poweroff_timeout_s))
  while kill -0 "$nspawn_pid" 2>/dev/null && [ "$(now_s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$nspawn_pid" 2>/dev/null; then
    say "the container did not power off within ${poweroff_timeout_s}s; killing it"
    [ -z "$pid1" ] || kill -KILL "$pid1" 2>/dev/null || true  # ends its pid namespace
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid=""
  phase_end
}
trap 'poweroff' EXIT
trap 'exit 130' INT TERM

phase boot
systemd-nspawn --keep-unit --register=no -D "$root" --boot --console=pipe --private-network \
  >"$boot_log" 2>&1 </dev/null &
nspawn_pid=$!
deadline=$(($(now_s) + boot_timeout_s))
until pid1=$(find_pid1); do
  kill -0 "$nspawn_pid" 2>/dev/null || { tail -n 30 "$boot_log" >&2; die "systemd-nspawn exited"; }
  [ "$(now_s)" -lt "$deadline" ] || die "no PID 1 in the container after ${boot_timeout_s}s"
  sleep 0.1
done
# is-system-running --wait blocks until the boot is over; before PID 1 listens on its
# private socket it fails at once, and is asked again.
state=""
while :; do
  state=$(timeout 30 nsenter -t "$pid1" -a systemctl is-system-running --wait 2>/dev/null) || true
  case "$state" in
    running | degraded) break ;;
  esac
  kill -0 "$nspawn_pid" 2>/dev/null || { tail -n 30 "$boot_log" >&2; die "the container stopped while booting"; }
  [ "$(now_s)" -lt "$deadline" ] || { tail -n 30 "$boot_log" >&2;
    die "not running after ${boot_timeout_s}s (state: ${state:-no answer})"; }
  sleep 0.2
done
phase_end
say "$(nsenter -t "$pid1" -a systemctl --version | head -1) is $state in the container (PID 1 is $pid1 on the host)"
if [ "$state" = degraded ]; then
  say "failed units:"; nsenter -t "$pid1" -a systemctl --failed --no-legend >&2 || true
fi

# In the background, waited for, so that SIGINT/SIGTERM reach the trap at once (bash runs
# traps only between foreground commands); the trap ends the command before the container.
command_pid=""
with_container() {
  USHERD_SYSTEMD_PID1="$pid1" USHERD_SYSTEMD_ROOT="$root" \
    USHERD_SYSTEMD_CHECKOUT="$checkout_in_root" USHERD_SOURCE_DIR="$here" \
    PYTHONDONTWRITEBYTECODE=1 "$@" <&0 &
  command_pid=$!
  wait "$command_pid"
}
status=0
phase tests
if [ $# -gt 0 ]; then
  with_container "$@" || status=$?
else
  failed=()
  for t in "$here"/tests/systemd/test_*.py; do
    say "$(basename "$t")"
    with_container /usr/bin/python3 "$t" || failed+=("$(basename "$t")")
  done
  [ ${#failed[@]} -eq 0 ] || { status=1; say "FAILED: ${failed[*]}"; }
fi
phase_end
poweroff
say "times: ${times[*]}"
exit "$status"

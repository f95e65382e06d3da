#!/usr/bin/env bash
# A Debian root built with debootstrap from Debian's archive (13 "trixie" by default, or 12
# "bookworm"), and the native suite run inside it with chroot: how usherd is tested on the
# release new servers run, from a Debian 12 machine (`make test-debian13`; CI runs it after
# the native suite), and how its Debian package is built and installed on each release.
#
#   scripts/debian-root.sh [test]      create (or reuse) the root, copy the checkout to
#                                      /root/usherd inside, install its packages with
#                                      scripts/install-deps.sh there, run `make test`, then
#                                      what `package` does
#   scripts/debian-root.sh package     build the .deb inside (scripts/package.sh: lintian
#                                      clean), install it with apt-get in a fresh copy of the
#                                      debootstrap result and check it there
#                                      (tests/package/check-installed.sh)
#   scripts/debian-root.sh create      only create the root (cached; reused when complete)
#   scripts/debian-root.sh run CMD...  run CMD inside, in the copy of the checkout
#   scripts/debian-root.sh path        print where the root is
# scripts/debian13-root.sh is this script for Debian 13.
#
#   USHERD_DEBIAN_RELEASE    13 (default) or 12
#   USHERD_DEBIAN13_ROOT     the Debian 13 root (default: build/debian13-root of this
#                            checkout); USHERD_DEBIAN12_ROOT the same for 12 (build/debian12-root)
#   USHERD_DEBIAN_MIRROR     the archive (default: the host's, from its apt sources)
#   USHERD_DEBIAN13_TARGETS  what `test` makes inside after `make build` (default: test)
#   USHERD_DEBIAN13_CTEST    with the default target: a CTest -R regex for a subset
#   USHERD_DEBIAN_PACKAGE    0: `test` leaves the package out
#   USHERD_DEB_BUILD_OPTIONS DEB_BUILD_OPTIONS for the package build: CI's "noopt noddebs"
#                            (-O0, no -dbgsym package: the same files, lintian and install
#                            checks, in less time); `make package` builds it as released
#
# The root is built in ROOT.new and renamed when debootstrap and the setup below have
# finished, so an existing ROOT is a complete one; a ROOT.new left by an interrupted run is
# removed. A copy of the bare debootstrap result is kept beside it as ROOT.fresh (reflinked
# where the file system can), where the package is installed as on a new server (in a
# throw-away copy); a root cached without one gets it from a debootstrap of its own. Inside:
# a policy-rc.d that exits 101 (installing openssh-server must not start sshd on port 22 of
# the shared loopback), and the archive's SUITE, SUITE-updates and SUITE-security suites. The copy of the checkout lives in /root (mode 0700, where a root
# user's clone lands) and keeps its build/ between runs, so a second run only rebuilds what
# changed.
#
# While in use: /proc, /sys and /dev (recursive binds, made slaves so that unmounting them
# never propagates back to the host) and a fresh tmpfs on /run (not nosuid: see enter_root).
# On exit, whatever the cause, the processes whose root is ROOT are killed and everything
# mounted under ROOT is unmounted, so the script never leaves mounts behind (and `make
# clean`, which removes build/, never walks into the host's /dev). A lock (ROOT.lock) keeps
# two runs, or this and the systemd container (scripts/systemd-bed.sh), off the same root.
#
# The network is the host's (no namespace of its own): tests keep using port 0 or distinct
# ports, and a server in the root is reachable from the host. Each phase's time is printed
# as "debianN-root: time PHASE Ns".
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
release="${USHERD_DEBIAN_RELEASE:-13}"
case "$release" in
  13) suite=trixie; root="${USHERD_DEBIAN13_ROOT:-$here/build/debian13-root}" ;;
  12) suite=bookworm; root="${USHERD_DEBIAN12_ROOT:-$here/build/debian12-root}" ;;
  *) echo "debian-root: USHERD_DEBIAN_RELEASE=$release: 12 or 13" >&2; exit 2 ;;
esac
root="$(realpath -m "$root")"
fresh="$root.fresh"
check_root="$root.pkgcheck"
checkout_in_root=/root/usherd

say() { echo "debian$release-root: $*" >&2; }
die() { say "$*"; exit 1; }

# The host's Debian archive: the first apt source whose path ends in /debian (deb822 .sources
# files and one-line .list files alike), or USHERD_DEBIAN_MIRROR.
host_archive() {
  local suffix="$1"
  local files=(/etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list)
  local f
  for f in "${files[@]}"; do
    [ -r "$f" ] || continue
    # deb822: "URIs: a b"; one-line: "deb [opts] URI suite comp"
    sed -n -e 's/^URIs:[[:space:]]*//p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' "$f" |
      tr ' ' '\n'
  done | grep -m1 -E "^[a-z]+://[^ ]*/debian${suffix}/?$" | sed 's:/$::' || true
}

times=()
phase() { phase_name="$1"; phase_start_ns=$(date +%s%N); }
phase_end() {
  local s=$((($(date +%s%N) - phase_start_ns) / 1000000000))
  times+=("$phase_name=${s}s")
  say "time $phase_name ${s}s"
}

# Mount points under $1, deepest first (from the kernel's table, so nothing is missed).
mounts_under() {
  awk -v r="$1" '{ gsub(/\\040/, " ", $5); if ($5 == r || index($5, r "/") == 1) print $5 }' \
    /proc/self/mountinfo | sort -r
}

# Kills every process whose root directory is ROOT (what the tests inside left running),
# then unmounts everything under ROOT. Idempotent; the EXIT trap.
release_root() {
  local p pids=()
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && pids+=("${p#/proc/}")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    say "killing ${#pids[@]} process(es) left inside the root"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    local tries=50  # a SIGKILLed process is gone in ms; unmounting lazily covers the rest
    for p in "${pids[@]}"; do
      while [ "$(readlink "/proc/$p/root" 2>/dev/null)" = "$root" ] && [ $tries -gt 0 ]; do
        sleep 0.1; tries=$((tries - 1))
      done
    done
  fi
  local m
  for m in $(mounts_under "$root"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if [ -n "$(mounts_under "$root")" ]; then
    say "still mounted under $root:"; mounts_under "$root" >&2; return 1
  fi
}

enter_root() {
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true  # apt inside
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"
  mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"
  # A clean /run each time, as after a boot; not nosuid (as systemd would mount it), like
  # the host's: the tests keep their setuid probe under /run (test_security).
  mount -t tmpfs -o mode=0755,nodev tmpfs "$root/run"
}

# Runs a command inside with a clean environment (nothing of the host's leaks in), but for
# the sizes of the soak and handoff runs when set (CI runs them at full size natively), and
# the e2e tests' per-test deadline: a guard against hangs, set to 180 s here (90 s natively)
# because the same work is slower in the root: the 10,000 handoffs of e2e: handoff took 88 s
# alone there against 69 s natively on the 2-core machine, past 90 s beside another test.
# In the background, waited for: bash runs a trap only once the foreground command is over,
# and SIGINT/SIGTERM must end the run (and the processes inside) at once. <&0 keeps stdin,
# which bash would otherwise point at /dev/null for a background command.
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    USHERD_E2E_TEST_TIMEOUT="${USHERD_E2E_TEST_TIMEOUT:-180}" \
    ${USHERD_SOAK_CONNECTIONS:+USHERD_SOAK_CONNECTIONS="$USHERD_SOAK_CONNECTIONS"} \
    ${USHERD_HANDOFF_COUNT:+USHERD_HANDOFF_COUNT="$USHERD_HANDOFF_COUNT"} "$@" <&0 &
  wait $!
}

create_root() {
  [ -d "$root" ] && return 0
  local new="$root.new"
  if [ -e "$new" ]; then
    say "removing $new, left by an interrupted run"
    release_root_at "$new"
    rm -rf --one-file-system "$new"
  fi
  "$here/scripts/install-deps.sh" beds
  phase bootstrap
  bootstrap_into "$new"
  # Before anything is installed: what a new server has, for the package's install test.
  [ -d "$fresh" ] || cp -a --reflink=auto "$new" "$fresh"
  mv "$new" "$root"
  phase_end
}

# ROOT.fresh for a root cached before there was one: a debootstrap of its own.
create_fresh() {
  [ -d "$fresh" ] && return 0
  rm -rf --one-file-system "$fresh.new"
  phase bootstrap-fresh
  bootstrap_into "$fresh.new"
  mv "$fresh.new" "$fresh"
  phase_end
}

# debootstrap SUITE into $1 (minbase, plus what the scripts inside need), with the archive's
# suites, a policy-rc.d that exits 101, and /etc/usherd-test-root saying what it is.
bootstrap_into() {
  local new="$1"
  local mirror="${USHERD_DEBIAN_MIRROR:-$(host_archive "")}"
  local security="${USHERD_DEBIAN_SECURITY_MIRROR:-$(host_archive -security)}"
  [ -n "$mirror" ] || die "no Debian archive in the host's apt sources; set USHERD_DEBIAN_MIRROR"
  say "debootstrap $suite from $mirror into $new"
  mkdir -p "$(dirname "$new")"
  debootstrap --variant=minbase \
    --include=ca-certificates,git,make,procps,iproute2,python3 \
    "$suite" "$new" "$mirror" >"$new.log" 2>&1 || {
      tail -n 20 "$new.log" >&2; die "debootstrap failed (log: $new.log)"; }
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -z "$security" ] || echo "deb $security $suite-security main"
  } >"$new/etc/apt/sources.list"
  printf '#!/bin/sh\n# usherd test root: never start daemons on install\nexit 101\n' \
    >"$new/usr/sbin/policy-rc.d"
  chmod 755 "$new/usr/sbin/policy-rc.d"
  printf 'Debian %s root for usherd tests: debootstrap --variant=minbase %s from %s, %s\n' \
    "$release" "$suite" "$mirror" "$(date -u +%FT%TZ)" >"$new/etc/usherd-test-root"
  mv "$new.log" "$new/var/log/usherd-debootstrap.log"
}

# release_root for a path other than $root (the half-built ROOT.new).
release_root_at() { local saved="$root"; root="$1"; release_root || true; root="$saved"; }

# The checkout as git sees it (tracked and untracked files, minus what .gitignore ignores),
# copied into the root; the copy's own build directories stay, so rebuilds are incremental.
# Files are compared by content and a changed one gets the time of the copy, not its own:
# a source edited before the root's last build would otherwise look older than its object
# and the build would link stale objects.
sync_checkout() {
  mkdir -p "$root$checkout_in_root"
  rsync -rlpgoD --checksum --delete --exclude=/.git --filter=':- .gitignore' --exclude="/build/" \
    --exclude="/build-*/" "$here/" "$root$checkout_in_root/"
}

# The package: built inside with scripts/package.sh (which installs its build dependencies
# with apt-get build-dep and fails on a lintian error or warning), then installed in a
# throw-away copy of ROOT.fresh, where tests/package/check-installed.sh checks it as a new
# server would see it, and purges it.
package_and_check() {
  phase package-build
  in_root env JOBS="${JOBS:-$(nproc)}" DEB_BUILD_OPTIONS="${USHERD_DEB_BUILD_OPTIONS:-}" \
    "$checkout_in_root/scripts/package.sh" || return 1
  phase_end
  local deb
  deb="$(ls -t "$root$checkout_in_root"/build/package/usherd_*.deb | head -n 1)"
  create_fresh
  phase package-install
  local saved="$root" status=0
  release_root_at "$check_root"
  rm -rf --one-file-system "$check_root"
  cp -a --reflink=auto "$fresh" "$check_root"
  cp "$deb" "$here/tests/package/check-installed.sh" "$check_root/root/"
  root="$check_root"
  enter_root
  in_root /bin/sh /root/check-installed.sh "/root/$(basename "$deb")" || status=$?
  root="$saved"
  release_root_at "$check_root"
  rm -rf --one-file-system "$check_root"
  phase_end
  return "$status"
}

lock_root() {
  mkdir -p "$(dirname "$root")"
  exec 9>"$root.lock"
  flock -n 9 || die "$root is in use (another run or the systemd container holds $root.lock)"
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
command="${1:-test}"
[ $# -gt 0 ] && shift
case "$command" in
  path) echo "$root"; exit 0 ;;
  create) lock_root; create_root; exit 0 ;;
  run | test | package) ;;
  *) echo "usage: $0 [test|package|create|run CMD...|path]" >&2; exit 2 ;;
esac

lock_root
trap 'release_root; release_root_at "$check_root"' EXIT
trap 'exit 130' INT TERM
create_root
[ -z "$(mounts_under "$root")" ] || release_root
phase mount-and-copy
enter_root
sync_checkout
phase_end

if [ "$command" = run ]; then
  in_root /bin/sh -c 'cd "$0" && exec "$@"' "$checkout_in_root" "$@"
  exit $?
fi

say "root: $(cat "$root/etc/usherd-test-root" 2>/dev/null || echo "$root")"
if [ "$command" = package ]; then
  status=0
  package_and_check || status=$?
  say "times: ${times[*]}"
  [ "$status" -eq 0 ] && say "package passed on Debian $release" ||
    say "package FAILED on Debian $release (status $status)"
  exit "$status"
fi
phase install-deps
in_root "$checkout_in_root/scripts/install-deps.sh" all
phase_end
say "inside: $(in_root sh -c '. /etc/os-release; echo "$PRETTY_NAME"'), $(in_root sh -c \
  'g++ --version | head -1; /usr/sbin/sshd -V 2>&1 | head -1; clang --version | head -1' | paste -sd, -)"

phase build
in_root make -C "$checkout_in_root" build
phase_end

targets="${USHERD_DEBIAN13_TARGETS:-test}"
status=0
phase "make-$targets"
if [ -n "${USHERD_DEBIAN13_CTEST:-}" ] && [ "$targets" = test ]; then
  # A bounded subset: the CTest tests matching the regex, then the fuzzers as `make test` does.
  in_root /bin/sh -c 'cd "$0/build" && ctest -j2 --output-on-failure --timeout 300 -R "$1" &&
    cd .. && scripts/fuzz.sh short' "$checkout_in_root" "$USHERD_DEBIAN13_CTEST" || status=$?
else
  # shellcheck disable=SC2086 # targets is a list of make targets
  in_root make -C "$checkout_in_root" $targets || status=$?
fi
phase_end
if [ "$status" -eq 0 ] && [ "${USHERD_DEBIAN_PACKAGE:-1}" != 0 ]; then
  package_and_check || status=$?
fi
say "times: ${times[*]}"
[ "$status" -eq 0 ] && say "passed on Debian $release" || say "FAILED on Debian $release (status $status)"
exit "$status"

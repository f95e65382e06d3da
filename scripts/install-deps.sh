#!/usr/bin/env bash
# Installs what usherd needs, from Debian's packages only, for the release it runs on.
# Supported: Debian 12 "bookworm" and Debian 13 "trixie"; on anything else it stops with one
# line, before touching the system. Idempotent and quiet when everything is present. Run as
# root.
#   scripts/install-deps.sh build   to compile usherd and its tests
#   scripts/install-deps.sh all     (default) also the test suite's daemons and clients, and
#                                   the clang + compiler-rt the fuzzers build with
#   scripts/install-deps.sh beds    on the host: what scripts/debian13-root.sh and
#                                   scripts/systemd-bed.sh need (debootstrap, systemd-nspawn)
#   scripts/install-deps.sh bench   what `make bench-flood` runs and draws with: the peers
#                                   (xinetd, systemd-socket-activate), OpenSSH, gnuplot, and
#                                   dpkg-dev to build busybox tcpsvd from Debian's source
#
# The releases differ in names, not in what is installed: Debian 13 has no Boost 1.81 and no
# clang 14, and calls Catch2 3 libcatch2-dev (its catch2 is a transitional name).
#
# A policy-rc.d that exits 101 goes in first: installing openssh-server, xinetd or
# rsync must never start a system daemon that would take ports behind the tests' back.
set -euo pipefail

os_release=/etc/os-release
[ -r "$os_release" ] || os_release=/usr/lib/os-release
id="" codename="" pretty="an unknown system (no os-release)"
if [ -r "$os_release" ]; then
  # shellcheck disable=SC1090 # os-release(5) is shell-compatible by definition
  eval "$(. "$os_release"; printf 'id=%q codename=%q pretty=%q\n' \
    "${ID:-}" "${VERSION_CODENAME:-}" "${PRETTY_NAME:-${ID:-unknown}}")"
fi

common_build=(
  build-essential cmake ninja-build pkg-config
  libspdlog-dev libsystemd-dev libcli11-dev libexpected-dev libpcre2-dev libxml2-dev
  libfuse3-dev scdoc
)
common_test=(
  clang
  openssh-server openssh-client openssh-sftp-server dropbear-bin git rsync xinetd
  systemd curl python3 python3-prometheus-client procps iproute2 fuse3 strace
)
case "$id:$codename" in
  debian:bookworm)
    release_build=(libboost1.81-dev libboost-json1.81-dev catch2)
    release_test=(libclang-rt-14-dev) ;;  # clang is clang-14
  debian:trixie)
    release_build=(libboost-dev libboost-json-dev libcatch2-dev)  # Boost 1.83, Catch2 3.7
    release_test=(libclang-rt-19-dev) ;;  # clang is clang-19
  *)
    echo "install-deps: $pretty is not supported (Debian 12 bookworm and Debian 13 trixie are)" >&2
    exit 1 ;;
esac

case "${1:-all}" in
  build) want=("${common_build[@]}" "${release_build[@]}") ;;
  all) want=("${common_build[@]}" "${release_build[@]}" "${common_test[@]}" "${release_test[@]}") ;;
  beds) want=(debootstrap systemd-container rsync) ;;
  bench) want=(openssh-server openssh-client xinetd systemd gnuplot-nox dpkg-dev procps) ;;
  *) echo "usage: $0 [build|all|beds|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# installed by usherd scripts/install-deps.sh: never start daemons on install\nexit 101\n' \
    >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi
echo "install-deps: installing on $pretty: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

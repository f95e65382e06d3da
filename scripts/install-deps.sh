#!/usr/bin/env bash
# Installs what usherd needs to build and test on Debian 12, from Debian's packages only.
# Idempotent and quiet when everything is present. Run as root.
#
# A policy-rc.d that exits 101 goes in first: installing openssh-server, xinetd or
# rsync must never start a system daemon that would take ports behind the tests' back.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libspdlog-dev libsystemd-dev catch2 libcli11-dev libexpected-dev libpcre2-dev
  libxml2-dev libfuse3-dev
)
test_pkgs=(
  clang libclang-rt-14-dev
  openssh-server openssh-client openssh-sftp-server dropbear-bin git rsync xinetd
  systemd curl python3 python3-prometheus-client procps iproute2 fuse3 strace
)
case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  *) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
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
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Runs usherd in the foreground on examples/ (the target of `make run`).
#
#   scripts/run-examples.sh BUILD_DIR      prepare the example data, then exec usherd
#   scripts/run-examples.sh --prepare-only prepare the example data and exit
#
# The data the example units serve lives in /var/lib/usherd-examples (USHERD_EXAMPLES_DATA
# overrides it, for tests that run copies of the units): a demo bare git repository, an
# rsync module and its rsyncd.conf, and a host key for dropbear. Preparing is idempotent:
# what exists is left as it is. Every example listens on loopback only; an example whose
# daemon is not installed is skipped by usherd (ConditionPathExists=) with a notice.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${USHERD_EXAMPLES_DATA:-/var/lib/usherd-examples}
runtime=${USHERD_EXAMPLES_RUNTIME:-/run/usherd-examples}

usage() {
  echo "usage: $0 BUILD_DIR | --prepare-only" >&2
  exit 2
}

prepare_git() {
  if ! command -v git >/dev/null; then
    echo "  git:      not installed (apt-get install git), skipped"
    return
  fi
  install -d -m 755 "$data/git"
  local repo="$data/git/demo.git"
  if [ ! -d "$repo" ]; then
    local work
    work=$(mktemp -d)
    local git=(git -c user.name="usherd examples" -c user.email=examples@usherd.invalid
               -c init.defaultBranch=main)
    "${git[@]}" init -q "$work"
    printf 'A demo repository served by git daemon --inetd under usherd.\n' >"$work/README"
    "${git[@]}" -C "$work" add README
    "${git[@]}" -C "$work" commit -q -m "Demo repository for the usherd examples"
    "${git[@]}" clone -q --bare "$work" "$repo.tmp"
    rm -rf "$work"
    touch "$repo.tmp/git-daemon-export-ok"
    mv "$repo.tmp" "$repo"
  fi
  echo "  git:      git clone git://127.0.0.1/demo.git            (serves $data/git)"
}

prepare_rsync() {
  if [ ! -x /usr/bin/rsync ]; then
    echo "  rsync:    not installed (apt-get install rsync), skipped"
    return
  fi
  install -d -m 755 "$data/rsync" "$data/rsync/demo" "$data/log"
  [ -e "$data/rsync/demo/README" ] ||
    printf 'A demo module served by rsync --daemon under usherd.\n' >"$data/rsync/demo/README"
  if [ ! -e "$data/rsyncd.conf" ]; then
    cat >"$data/rsyncd.conf.tmp" <<EOF
# rsyncd.conf for the usherd examples (inetd mode: port and address settings do not apply).
use chroot = yes
uid = nobody
gid = nogroup
reverse lookup = no
log file = $data/log/rsyncd.log
transfer logging = yes

[demo]
    path = $data/rsync/demo
    comment = usherd example module
    read only = yes
EOF
    mv "$data/rsyncd.conf.tmp" "$data/rsyncd.conf"
  fi
  echo "  rsync:    rsync rsync://127.0.0.1:8873/  and  rsync -av rsync://127.0.0.1:8873/demo/ DIR/"
}

prepare_dropbear() {
  if [ ! -x /usr/sbin/dropbear ] || ! command -v dropbearkey >/dev/null; then
    echo "  dropbear: not installed (apt-get install dropbear-bin), skipped"
    return
  fi
  install -d -m 755 "$data/dropbear"
  local key="$data/dropbear/dropbear_ed25519_host_key"
  if [ ! -e "$key" ]; then
    dropbearkey -t ed25519 -f "$key.tmp" >/dev/null 2>&1
    mv "$key.tmp" "$key"
  fi
  echo "  dropbear: ssh -p 2223 USER@127.0.0.1                      (keys from ~USER/.ssh/authorized_keys)"
}

describe_ssh() {
  if [ ! -x /usr/sbin/sshd ]; then
    echo "  ssh:      not installed (apt-get install openssh-server), skipped"
  elif [ ! -e /etc/ssh/ssh_host_ed25519_key ]; then
    echo "  ssh:      no host keys in /etc/ssh (ssh-keygen -A), skipped"
  else
    echo "  ssh:      ssh -p 2222 USER@127.0.0.1                      (sshd -i with /etc/ssh/sshd_config)"
  fi
}

prepare() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "run-examples: run as root (the examples bind ports, create /run/sshd and drop to nobody)" >&2
    exit 1
  fi
  install -d -m 755 "$data"
  echo "usherd examples, on loopback only:"
  describe_ssh
  prepare_dropbear
  prepare_git
  prepare_rsync
}

[ $# -eq 1 ] || usage
case "$1" in
  --prepare-only)
    prepare
    exit 0
    ;;
  -*) usage ;;
esac

build=$1
usherd="$build/supervisor/usherd"
if [ ! -x "$usherd" ]; then
  echo "run-examples: $usherd not found; build first (make build)" >&2
  exit 1
fi
prepare
echo "status: $build/supervisor/usherctl --runtime-dir $runtime status"
echo "Ctrl-C stops usherd (sessions already running are left alone)."
exec "$usherd" --units "$here/examples/units" --config "$here/examples/usherd.conf" \
  --runtime-dir "$runtime"

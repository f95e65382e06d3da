#!/bin/sh
# The usherd package as a new server gets it: run as root inside a fresh debootstrap root
# (a copy, thrown away afterwards; scripts/debian-root.sh package), with the .deb as $1.
#   - `apt-get install ./usherd_*.deb` pulls runtime dependencies only: no -dev package, no
#     compiler or build tool among what it installs;
#   - usherd.service is enabled, usherd.socket is not; the default usherd.conf and the empty
#     units directory are there; `usherd --check` passes on them;
#   - `man usherd`, `man usherd.conf`, `man usherctl`, `man usherd.units` open (man-db
#     installed afterwards, as the admin has it), usherctl's bash completion is installed;
#   - `apt-get purge usherd` leaves nothing named usherd behind but the admin's unit.
# Each check prints "check-installed: ok ..." or fails the script with what it saw.
set -eu
deb="$1"
say() { echo "check-installed: $*"; }
fail() { echo "check-installed: FAILED: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

packages() { dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | sort; }
# Every file or directory whose name says usherd, and all of /etc/usherd, outside the
# kernel's file systems, this script's own files in /root and man-db's cache of formatted
# pages (/var/cache/man: written by `man` below, not by the package, and expired by man-db's
# own daily job).
usherd_files() {
  { find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /root -o \
      -path /var/cache/man \) -prune -o -name '*usherd*' -print
    [ ! -d /etc/usherd ] || find /etc/usherd; } | sort -u
}

. /etc/os-release
say "on $PRETTY_NAME, installing $(basename "$deb")"
packages >/tmp/before
usherd_files >/tmp/files-before
apt-get update -qq
apt-get install -y -qq "$deb" >/tmp/install.log 2>&1 || { cat /tmp/install.log; fail "apt-get install $deb"; }
packages >/tmp/after
new="$(comm -13 /tmp/before /tmp/after | tr '\n' ' ')"
say "apt-get install pulled: $new"
build_only="$(echo "$new" | tr ' ' '\n' |
  grep -E -- '-dev$|^(cmake|ninja-build|g\+\+.*|gcc.*|cpp.*|scdoc|debhelper|dh-.*|pkgconf.*|make|lintian|bash-completion)$' || true)"
[ -z "$build_only" ] || fail "build-time packages installed with usherd: $build_only"
case " $new " in *" usherd "*) ;; *) fail "usherd is not among the installed packages" ;; esac
say "ok: runtime dependencies only"

[ -x /usr/sbin/usherd ] && [ -x /usr/sbin/usherctl ] || fail "usherd/usherctl not in /usr/sbin"
unit_dir=/usr/lib/systemd/system
[ -f "$unit_dir/usherd.service" ] || unit_dir=/lib/systemd/system
grep -qx 'ExecStart=/usr/sbin/usherd' "$unit_dir/usherd.service" || fail "usherd.service runs: $(grep ExecStart "$unit_dir/usherd.service")"
[ -f "$unit_dir/usherd.socket" ] || fail "no usherd.socket in $unit_dir"
[ -L /etc/systemd/system/multi-user.target.wants/usherd.service ] || fail "usherd.service is not enabled"
[ ! -e /etc/systemd/system/sockets.target.wants/usherd.socket ] || fail "usherd.socket is enabled"
[ -f /etc/usherd/usherd.conf ] && [ -d /etc/usherd/units ] || fail "no /etc/usherd/usherd.conf or units/"
[ -z "$(ls -A /etc/usherd/units)" ] || fail "the package ships units: $(ls /etc/usherd/units)"
grep -q '^/etc/usherd/usherd.conf$' /var/lib/dpkg/info/usherd.conffiles || fail "usherd.conf is not a conffile"
say "ok: files in place, usherd.service enabled, usherd.socket not, no unit shipped"
out="$(/usr/sbin/usherd --check --strict)" || fail "usherd --check --strict on the defaults: $out"
say "ok: usherd --check --strict: $(echo "$out" | tail -n 1)"
[ -f /usr/share/bash-completion/completions/usherctl ] || fail "no bash completion for usherctl"

dpkg-query -W -f='${Status}' man-db 2>/dev/null | grep -q "install ok installed" ||
  apt-get install -y -qq --no-install-recommends man-db >/dev/null
for page in usherd usherd.conf usherctl usherd.units; do
  text="$(MANWIDTH=80 man -P cat "$page" 2>/tmp/man.err)" || fail "man $page: $(cat /tmp/man.err)"
  first="$(echo "$text" | sed -n '/^NAME/{n;p;q}' | sed 's/^ *//')"
  [ -n "$first" ] || fail "man $page has no NAME section"
  say "ok: man $page: $first"
done

# An admin's unit, which the purge must leave alone.
printf '[Socket]\nListenStream=127.0.0.1:7\nAccept=yes\n' >/etc/usherd/units/echo.socket
apt-get purge -y -qq usherd >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; fail "apt-get purge usherd"; }
left="$(usherd_files | comm -13 /tmp/files-before - | tr '\n' ' ')"
[ "$left" = "/etc/usherd /etc/usherd/units /etc/usherd/units/echo.socket " ] ||
  fail "after apt-get purge usherd, left: $left"
say "ok: apt-get purge usherd left only the admin's: $left"

#!/usr/bin/env bash
# Builds the Debian package of usherd for the release it runs on (Debian 12 or 13) and checks
# it with lintian: `make package`.
#
#   scripts/package.sh [OUTDIR]   OUTDIR defaults to build/package; the .deb lands there
#
# The checkout (minus .git and build directories) is copied to OUTDIR/usherd-VERSION and built
# there with `dpkg-buildpackage -us -uc -b`, so the source tree never gets debhelper's files
# and the artefacts never land beside the checkout. Missing build dependencies are installed
# with `apt-get build-dep` on that copy (as root), which reads debian/control and picks, from
# its alternatives, the packages of this release. lintian must report no error and no
# warning. JOBS (default: nproc) is the build's parallelism; DEB_BUILD_OPTIONS is passed on
# (dpkg-buildpackage(1)). A .deb newer than every file it is built from, and built with the
# same DEB_BUILD_OPTIONS, is not built again.
#
# Prints "package: time PHASE Ns" per phase and, last, the path of the .deb.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$here/build/package}")"
jobs="${JOBS:-$(nproc)}"
version="$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version 2>/dev/null ||
  sed -n '1s/^usherd (\([^)]*\)).*/\1/p' "$here/debian/changelog")"
arch="$(dpkg --print-architecture)"
src="$out/usherd-$version"

say() { echo "package: $*" >&2; }
die() { say "$*"; exit 1; }
phase() { phase_name="$1"; phase_start_ns=$(date +%s%N); }
phase_end() { say "time $phase_name $((($(date +%s%N) - phase_start_ns) / 1000000000))s"; }

export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_update() { [ -n "$apt_updated" ] || apt-get update -qq; apt_updated=1; }
for tool in dpkg-buildpackage dh lintian; do
  command -v "$tool" >/dev/null && continue
  [ "$(id -u)" -eq 0 ] || die "missing $tool: apt-get install dpkg-dev debhelper lintian (as root)"
  say "installing dpkg-dev debhelper lintian"
  apt_update
  apt-get install -y -qq --no-install-recommends dpkg-dev debhelper lintian fakeroot >/dev/null
  break
done

deb="$out/usherd_${version}_$arch.deb"
# What the package is built from: the top-level CMakeLists.txt and the folders it adds (a new
# folder changes it too), debian/ and examples/ (installed as documentation).
inputs=(CMakeLists.txt cmake base policy units importer activation supervisor doc dist examples debian)
# DEB_BUILD_OPTIONS as given (CI's "noopt noddebs", see scripts/debian-root.sh), kept beside
# the .deb: a package built with other options is built again.
options="${DEB_BUILD_OPTIONS:-}"
if [ -f "$deb" ] && [ "$(cat "$deb.options" 2>/dev/null)" = "$options" ] &&
    [ -z "$(cd "$here" && find "${inputs[@]}" -newer "$deb" -print | head -n 1)" ]; then
  say "$deb is newer than every source: not built again"
  echo "$deb"
  exit 0
fi

phase copy
rm -rf --one-file-system "$src"
mkdir -p "$src"
tar -C "$here" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=./obj-\* \
  --exclude=__pycache__ -cf - . | tar -C "$src" -xf -
phase_end

if ! (cd "$src" && dpkg-checkbuilddeps) 2>/dev/null; then
  [ "$(id -u)" -eq 0 ] || { (cd "$src" && dpkg-checkbuilddeps) || true; die "missing build dependencies (above); run as root"; }
  phase build-deps
  say "installing the build dependencies of debian/control"
  apt_update
  apt-get build-dep -y -qq "$src" >/dev/null
  phase_end
fi

phase dpkg-buildpackage
rm -f "$out"/usherd_"$version"_*.deb "$out"/usherd_"$version"_*.changes \
  "$out"/usherd_"$version"_*.buildinfo "$out"/usherd-dbgsym_*.deb
rm -f "$deb.options"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs $options" \
  dpkg-buildpackage -us -uc -b >"$out/dpkg-buildpackage.log" 2>&1) || {
  tail -n 40 "$out/dpkg-buildpackage.log" >&2; die "dpkg-buildpackage failed (log: $out/dpkg-buildpackage.log)"; }
phase_end
[ -f "$deb" ] || die "no $deb after dpkg-buildpackage"
printf '%s\n' "$options" >"$deb.options"

phase lintian
lintian --fail-on error,warning --info "$deb" || die "lintian reported errors or warnings on $deb"
phase_end
say "$(. /etc/os-release; echo "$PRETTY_NAME"): $deb ($(du -k "$deb" | cut -f1) KiB)"
echo "$deb"

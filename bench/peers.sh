# Peers built from Debian's sources, shared by bench/run.sh and bench/flood/run.sh. Sourced,
# not run. Needs $peer_root (where peers are unpacked and built, e.g. BUILD/bench-peers).

# busybox tcpsvd: Debian's busybox binaries lack the applet, so it is built from Debian's
# busybox source package with only that applet. The source is fetched with apt-get source
# through a private deb-src list (same archive and keyring as the system's own list), so the
# system's apt configuration is left alone.
build_tcpsvd() {
  local apt="$peer_root/apt" src
  mkdir -p "$apt/lists/partial" "$apt/parts"
  local uri suite
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  cat >"$apt/parts/debian-src.sources" <<SRC
Types: deb-src
URIs: ${uri:-http://deb.debian.org/debian}
Suites: ${suite:-bookworm}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists")
  apt-get "${opts[@]}" update -qq >/dev/null 2>&1 || return 1
  (cd "$peer_root/dl" && apt-get "${opts[@]}" source -qq busybox >/dev/null 2>&1) || return 1
  src=$(find "$peer_root/dl" -maxdepth 1 -type d -name 'busybox-*' | head -1)
  [[ -n "$src" ]] || return 1
  (cd "$src" && make -s allnoconfig >/dev/null &&
    sed -i 's/^# CONFIG_TCPSVD is not set/CONFIG_TCPSVD=y/' .config &&
    make -s -j2 >/dev/null 2>&1) || return 1
  # Without the busybox applet the binary dispatches on argv[0]: name it tcpsvd.
  mkdir -p "$peer_root/tcpsvd"
  cp "$src/busybox" "$peer_root/tcpsvd/tcpsvd"
  (cd "$src" && dpkg-parsechangelog -S Version) >"$peer_root/tcpsvd/version" 2>/dev/null || true
}


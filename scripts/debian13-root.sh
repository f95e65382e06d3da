#!/usr/bin/env bash
# scripts/debian-root.sh for Debian 13 "trixie" (`make test-debian13`, scripts/systemd-bed.sh).
USHERD_DEBIAN_RELEASE=13 exec "$(dirname "$0")/debian-root.sh" "$@"

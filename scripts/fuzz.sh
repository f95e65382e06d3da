#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/*_fuzz.cpp) for a fixed time each and fails on any crash.
#   scripts/fuzz.sh short   20 s per target (CI)
#   scripts/fuzz.sh long    10 min per target
# Builds with clang in build-fuzz (configured here when needed). Seeds come from
# fuzz/corpus/<target without _fuzz>/ and are never written to; new inputs go to
# fuzz/corpus-<target>/ (ignored by git), crash reproducers to build-fuzz/crashes/.
set -euo pipefail

mode="${1:-short}"
case "$mode" in
  short) seconds=20 ;;
  long) seconds=600 ;;
  *) echo "usage: $0 short|long" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"

if [ ! -f "$build/build.ninja" ] || ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$build/CMakeCache.txt" 2>/dev/null; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DUSHERD_FUZZ=ON -DUSHERD_TESTS=OFF >/dev/null
fi

targets=()
for src in "$root"/fuzz/*_fuzz.cpp; do
  [ -e "$src" ] || continue
  targets+=("$(basename "$src" .cpp)")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz/*_fuzz.cpp targets" >&2
  exit 1
fi

ninja -C "$build" -j2 "${targets[@]}"

mkdir -p "$build/crashes"
failed=()
for target in "${targets[@]}"; do
  seeds="$root/fuzz/corpus/${target%_fuzz}"
  work="$root/fuzz/corpus-$target"
  mkdir -p "$work"
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  echo "fuzz: $target for ${seconds}s" >&2
  if ! "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$target-" "${dirs[@]}" \
      >"$build/$target.log" 2>&1; then
    echo "fuzz: $target FAILED (log: $build/$target.log)" >&2
    tail -n 40 "$build/$target.log" >&2
    failed+=("$target")
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$build/$target.log" | tail -n 2 >&2 || true
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a crash" >&2

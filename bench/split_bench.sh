#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark (not a test): snap-split and snap-stat throughput on a large image, as a ratio to a
# plain sequential read of the same file measured in the same run (page cache warm for all).
#   bench/split_bench.sh BIN_DIR [MIB] [WORK_DIR]
set -euo pipefail
bin=${1:?usage: split_bench.sh BIN_DIR [MIB] [WORK_DIR]}
mib=${2:-1024}
work=${3:-$(dirname "$bin")/bench-work}
runs=${RUNS:-3}
mkdir -p "$work"
img=$work/bench.img
[ -f "$img" ] && [ "$(stat -c %s "$img")" = $((mib * 1048576)) ] || "$bin/mkimage" "$img" --mib "$mib" --zero-pct 70 --seed 7
# A real loading set: a process that maps the image privately and touches 4% of it.
pages=$((mib * 256))
"$bin/snap-record" -q --method pagemap --mem "$img" -o "$work/bench.ls" -- \
  "$bin/rwload" "$img" --seed 3 --reads $((pages / 40)) --writes $((pages / 100)) >/dev/null

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_cmd() {  # median wall time in ns of "$@" over $runs runs
  for _ in $(seq "$runs"); do
    local t0; t0=$(now); "$@" >/dev/null; echo $(( $(now) - t0 ))
  done | median
}
cat "$img" >/dev/null  # warm
base=$(time_cmd cat "$img")
split_once() {  # the old output is removed first: freeing its page cache is not the split's cost
  rm -f "$work/bench.split"; sync -f "$work" 2>/dev/null || true
  local t0; t0=$(now); "$bin/snap-split" -q --mem "$img" -o "$work/bench.split" "$work/bench.ls"; echo $(( $(now) - t0 ))
}
split=$(for _ in $(seq "$runs"); do split_once; done | median)
stat=$(time_cmd "$bin/snap-stat" "$work/bench.split")
verify=$(time_cmd "$bin/snap-stat" --verify "$work/bench.split")
roundtrip=$(time_cmd "$bin/snap-stat" --mem "$img" "$work/bench.split")
bytes=$((mib * 1048576))
row() { awk -v n="$1" -v t="$2" -v b="$bytes" -v base="$base" \
        'BEGIN { printf "%-34s %8.1f ms %8.2f GB/s %7.2fx\n", n, t/1e6, b/t, t/base }'; }
echo "image: $mib MiB, 70% zero pages; $(grep -c . <("$bin/snap-stat" --list "$work/bench.ls")) pages in the loading set; median of $runs runs"
printf "%-34s %11s %13s %8s\n" "step" "time" "throughput" "vs read"
row "sequential read (cat, baseline)" "$base"
row "snap-split" "$split"
row "snap-stat split (metadata)" "$stat"
row "snap-stat --verify (all checksums)" "$verify"
row "snap-stat --mem (byte compare)" "$roundtrip"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark (not a test): snap-split of a big image, page cache warm, against cat and cp of the
# same file in the same run (and, with OLD_BIN, another build's snap-split, whose output must be
# byte-identical). Each step runs right after a `cat` of the image (the cache is checked with
# fincore: "warm" is measured, not assumed); outputs go beside the image and are removed.
#   bench/split_scale.sh BIN_DIR GIB [WORK_DIR]      RUNS=3 OLD_BIN=DIR ZERO_PCT=45
# snap-split's time includes its fsync (the output is durable when it exits); cp's does not,
# so "cp+sync" is shown too. The loading set: rwload touching 2.5% / writing 1% of the pages,
# recorded with snap-record -m pagemap (fault-around makes it larger).
set -euo pipefail
bin=$(cd "${1:?usage: split_scale.sh BIN_DIR GIB [WORK_DIR]}" && pwd)
gib=${2:?usage: split_scale.sh BIN_DIR GIB [WORK_DIR]}
work=${3:-$bin/../bench-scale}
runs=${RUNS:-3}
zero=${ZERO_PCT:-45}
old=${OLD_BIN:-}
mkdir -p "$work" && cd "$work"
export SNAPKIT_CACHE=$work/cache
img=img$gib.mem
[ -f $img ] && [ "$(stat -c %s $img)" = $((gib << 30)) ] || "$bin/mkimage" $img --mib $((gib * 1024)) --zero-pct "$zero" --seed 11
pages=$((gib << 18))
[ -f $img.ls ] || "$bin/snap-record" -q --method pagemap --mem $img -o $img.ls -- \
  "$bin/rwload" $img --seed 3 --reads $((pages / 40)) --writes $((pages / 100)) > /dev/null
now() { date +%s%N; }
resident() { fincore -b -n -o RES $img 2>/dev/null | awk -v s=$((gib << 30)) '{printf "%3.0f%%", 100 * $1 / s}'; }
declare -A t
step() {  # step NAME CMD...: warm, time, drop the output
  local name=$1; shift
  cat $img > /dev/null
  local warm; warm=$(resident)
  local t0; t0=$(now)
  "$@" > /dev/null
  local dt=$(( $(now) - t0 ))
  t[$name]="${t[$name]:-} $dt"
  printf '  %-28s %8.2f s   (image resident before: %s)\n' "$name" "$(awk -v n=$dt 'BEGIN{print n/1e9}')" "$warm" >&2
}
for r in $(seq "$runs"); do
  echo "run $r" >&2
  step "cat (read)" cat $img
  step "cp" cp $img copy.mem; rm -f copy.mem; sync -f .
  step "cp+sync" sh -c "cp $img copy.mem && sync -f copy.mem"; rm -f copy.mem; sync -f .
  if [ -n "$old" ]; then
    step "old snap-split" "$old/snap-split" -q --mem $img -o old.split $img.ls
    [ -f new.split ] || "$bin/snap-split" -q --mem $img -o new.split $img.ls
    cmp old.split new.split || { echo "split_scale: old and new splits differ" >&2; exit 1; }
    rm -f old.split new.split; sync -f .
  fi
  step "snap-split --rehash" "$bin/snap-split" -q --rehash --mem $img -o s.split $img.ls; rm -f s.split; sync -f .
  step "snap-split" "$bin/snap-split" -q --mem $img -o s.split $img.ls; rm -f s.split; sync -f .
  step "snap-split --threads 1" "$bin/snap-split" -q --threads 1 --mem $img -o s.split $img.ls; rm -f s.split; sync -f .
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${t[cp]}" | median)
echo "image: $gib GiB, $zero% zero pages, $(($(stat -c %s $img.ls) / 16)) pages in the loading set (approx.); median of $runs runs"
printf '%-26s %9s %8s %9s\n' step time GB/s "vs cp"
for name in "cat (read)" cp cp+sync ${old:+"old snap-split"} "snap-split --rehash" snap-split "snap-split --threads 1"; do
  m=$(echo "${t[$name]}" | median)
  awk -v n="$name" -v m=$m -v b=$((gib << 30)) -v base=$base 'BEGIN {printf "%-26s %7.2f s %8.2f %8.2fx\n", n, m/1e9, b/m, m/base}'
done

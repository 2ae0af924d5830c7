#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark (not a test): a big guest's restore under every strategy, against the bare replay
# measured in the same run. An image of GIB GiB (mkfixture, no zero pages) whose loading set
# touches about half of its pages in short runs (1-8 pages: ~1M pages in ~230k runs at 8 GiB),
# split and placed as bench/restore's main placement (RW: dram staged on tmpfs, RO: dax on
# tmpfs, COLD: file), then restored by snap-restore --exec around `replay --verify` (every
# touched page and every 61st page compared with the image) with the image in the page cache.
# bare = replay alone on the image (QEMU's share=off mapping, no snap-restore): the floor
# every strategy is compared with. Prints, per strategy, restore-to-last-touch (median of
# RUNS), its ratio to bare, the mappings over the image, and the pages each class took from
# the image instead of its tier (plan.fallback_pages: 0 = every class from its own tier).
# The system's vm.max_map_count is used as it is, and printed.
#   bench/restore_scale.sh BIN_DIR [GIB [WORK_DIR]]     RUNS=3 SHM=/dev/shm  (default 8 GiB)
# WORK_DIR (default BIN_DIR/../bench-restore-scale) keeps the image, its loading set and split
# for the next run (GIB GiB of disk); the placed parts (RW and RO on SHM, about half the image; the
# rest on disk) and the runs' tiers are removed at the end, the runs' JSON kept in WORK_DIR/out.
set -euo pipefail
bin=$(cd "${1:?usage: restore_scale.sh BIN_DIR [GIB [WORK_DIR]]}" && pwd)
gib=${2:-8}
work=${3:-$bin/../bench-restore-scale}
runs=${RUNS:-3}
shm=${SHM:-/dev/shm}
mkdir -p "$work" && cd "$work"
work=$(pwd)
dram=$(mktemp -d "$shm/snapkit-scale-dram.XXXXXX")
cxl=$(mktemp -d "$shm/snapkit-scale-cxl.XXXXXX")
trap 'rm -rf "$dram" "$cxl" "$work/ssd" "$work"/*.placed' EXIT  # out/: the runs' JSON, kept
export SNAPKIT_CACHE=$work/cache
img=img$gib.mem
ls=img$gib.ls
pages=$((gib << 18))
if ! [ -f $img ] || ! [ -f $ls ] || [ "$(stat -c %s $img)" != $((gib << 30)) ]; then
  echo "making a $gib GiB image and its loading set (mkfixture)" >&2
  "$bin/mkfixture" $img $ls $pages 5 --zero-pct 0 --max-run 8 > /dev/null
fi
[ -f $img.split ] || "$bin/snap-split" -q --mem $img -o $img.split $ls
rm -rf ssd && mkdir ssd
"$bin/snap-place" -q $img.split -o p.placed --tier rw=dram --staging "$dram" --tier ro=dax:"$cxl" \
  --tier cold=file:"$work/ssd" > /dev/null
rm -rf out && mkdir out
cat $img > /dev/null
for r in $(seq "$runs"); do
  echo "run $r" >&2
  "$bin/replay" $img $ls --verify -o out/bare.$r.json
  for s in vanilla reap faasnap tiered; do
    cat $img > /dev/null
    "$bin/snap-restore" p.placed --strategy $s --image $img --json -o out/$s.$r.restore.json \
      --exec -- "$bin/replay" $img $ls --verify -o out/$s.$r.json
  done
done
python3 - "$work/out" "$runs" "$("$bin/snap-stat" --json $ls)" "$(cat /proc/sys/vm/max_map_count)" <<'PY'
import json, os, statistics, sys
out, runs, ls, maxmap = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
def load(name, r):
    return json.load(open(os.path.join(out, "%s.%d.json" % (name, r))))
bare = [load("bare", r) for r in range(1, runs + 1)]
for b in bare:
    assert b["verify"]["mismatched_pages"] == 0, b
b_ns = statistics.median(b["restore_to_last_touch_ns"] for b in bare)
print("%d touched pages (%d written), vm.max_map_count %s; restore-to-last-touch, median of %d runs, image in the page cache"
      % (ls["touched_pages"], ls["written_pages"], maxmap, runs))
print("%-9s %10s %8s %8s %s" % ("strategy", "ms", "x-bare", "maps", "pages from the image instead of their tier (rw/ro/cold)"))
print("%-9s %10.1f %8.2f %8s %s" % ("bare", b_ns / 1e6, 1.0, "1", "-"))
for s in ("vanilla", "reap", "faasnap", "tiered"):
    reps = [load(s, r) for r in range(1, runs + 1)]
    rest = [json.load(open(os.path.join(out, "%s.%d.restore.json" % (s, r)))) for r in range(1, runs + 1)]
    for x in reps:
        assert x["verify"]["mismatched_pages"] == 0, (s, x)
    ns = statistics.median(x["restore_to_last_touch_ns"] for x in reps)
    plan = rest[0].get("plan", {})
    fb = plan.get("fallback_pages", {})
    fbs = "/".join(str(fb.get(c, 0)) for c in ("rw", "ro", "cold")) if s != "vanilla" else "- (reads the image by design)"
    print("%-9s %10.1f %8.2f %8s %s" % (s, ns / 1e6, ns / b_ns, plan.get("mappings", "?"), fbs))
PY

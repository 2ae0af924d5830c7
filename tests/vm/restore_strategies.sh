#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real VM, every restore strategy through snap-restore --exec: for hello, json and pyaes,
# record a loading set (pagemap, huge-page advice dropped, image evicted), split, place
# (rw=dram, ro=dax on /dev/shm standing in for CXL, cold=file:), then restore with QEMU under
# vanilla, reap, faasnap and tiered (--drain-cold), invoke with the snapshot's test input
# and check the answer — and that the image file was never written (hash).
# usage: restore_strategies.sh [SNAPKIT_BIN]   (exit 77 = skipped)
source "$(dirname "$0")/lib.bash"
probe_vm
for t in snap-record snap-split snap-place snap-restore; do
    [ -x "$SNAPKIT_BIN/$t" ] || skip "$t not built"
done
[ -f "$SNAPKIT_BIN/../lib/libsnaprestore.so" ] || skip "libsnaprestore.so not built"
ensure_snapshot hello

W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W"
DAX=/dev/shm/snapkit-restore-$$
trap 'rm -rf "$DAX"' EXIT
B=$SNAPKIT_BIN
rows=()
for f in hello json pyaes; do
    S=$VMDIR/$f
    D=$W/$f
    mkdir -p "$D/ssd" "$DAX/$f"
    sum0=$(sha256sum "$S/mem.img" | cut -d' ' -f1)
    rec_input=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['record_input'])" "$S/meta.json")
    "$SNAPVM" restore --snapshot "$S" --input "$rec_input" --nohuge --cold --json \
        --wrap "$B/snap-record --mem $S/mem.img -m pagemap -q -o $D/rec.ls --" > "$D/record.json" ||
        fail "$f: recording restore failed: $(cat "$D/record.json")"
    "$B/snap-split" --mem "$S/mem.img" -o "$D/s.split" -q "$D/rec.ls" || fail "$f: snap-split"
    "$B/snap-place" "$D/s.split" -o "$D/p.placed" -q --tier rw=dram --tier ro=dax:"$DAX/$f" --tier cold=file:"$D/ssd" ||
        fail "$f: snap-place"
    for s in vanilla reap faasnap tiered tiered-overlap; do
        extra=""
        [ $s = tiered ] && extra="--drain-cold"
        [ $s = tiered-overlap ] && extra="--overlap"  # QEMU's mmap() returns before the eager installs
        out=$("$SNAPVM" restore --snapshot "$S" --json \
            --wrap "$B/snap-restore $D/p.placed --strategy ${s%-overlap} --image $S/mem.img --json -o $D/$s.report $extra --exec --") ||
            fail "$f $s: restore failed: $out $(cat "$D/$s.report" 2>/dev/null)"
        row=$(python3 - "$out" "$D/$s.report" "$s" <<'PY') || fail "$f $s: bad reports: $out"
import json, sys
r = json.loads(sys.argv[1]); p = json.load(open(sys.argv[2])); s = sys.argv[3]
if s == "tiered-overlap":
    assert p["preload"]["uffd"]["early_return"], p["preload"]
    s = "tiered"
assert r["ok"] and r["answer"] == r["expected"] and r["exit_code"] == 0, r
assert p["vmm"]["exit_status"] == 0 and p["preload"]["image_mapped"] and "error" not in p["preload"], p
# reap and tiered are served over userfaultfd; tiered maps the RO layout file with one mapping
if s in ("reap", "tiered"): assert p["plan"]["demand"], p["plan"]
if s == "tiered": assert p["plan"]["base"] == "file" and p["preload"]["base"] == "file", p["plan"]
if s == "reap": assert p["plan"]["base"] == "anon" and p["loaded_bytes"] > 0, p
print("%-6s %-14s resumed %6.1f ms  result %6.1f ms  plan %6.2f ms  %5d mappings  %8d bytes copied"
      % (r["function"], sys.argv[3], r["resumed_ms"], r["result_ms"], p["phases_ns"]["total"] / 1e6, p["mappings"],
         p["copied_bytes"]))
PY
        rows+=("$row")
        [ "$(sha256sum "$S/mem.img" | cut -d' ' -f1)" = "$sum0" ] || fail "$f $s: the image file was written"
    done
done
printf '%s\n' "${rows[@]}"
echo ok

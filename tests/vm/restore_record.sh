#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real VM, the uffd recording method under snap-restore --exec --record: record hello with
# pagemap (for a placed artifact and a reference), then restore it vanilla twice — once
# plain, once recorded over userfaultfd — and check: the answer, the image file never
# written (hash), a non-empty loading set with writes, its pages agreeing with the pagemap
# recording (a separate restore: pagemap cannot watch a uffd restore, whose image mapping is
# anonymous memory), and that it splits, places and restores (reap) to the right answer.
# usage: restore_record.sh [SNAPKIT_BIN]   (exit 77 = skipped)
source "$(dirname "$0")/lib.bash"
probe_vm
for t in snap-record snap-split snap-place snap-restore snap-stat; do
    [ -x "$SNAPKIT_BIN/$t" ] || skip "$t not built"
done
[ -f "$SNAPKIT_BIN/../lib/libsnaprestore.so" ] || skip "libsnaprestore.so not built"
ensure_snapshot hello

W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W"
DAX=/dev/shm/snapkit-record-$$
trap 'rm -rf "$DAX"' EXIT
B=$SNAPKIT_BIN
f=hello
S=$VMDIR/$f
D=$W/$f
mkdir -p "$D/ssd" "$D/ssd2" "$DAX/a" "$DAX/b"
sum0=$(sha256sum "$S/mem.img" | cut -d' ' -f1)
rec_input=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['record_input'])" "$S/meta.json")
"$SNAPVM" restore --snapshot "$S" --input "$rec_input" --nohuge --cold --json \
    --wrap "$B/snap-record --mem $S/mem.img -m pagemap -q -o $D/pm.ls --" > "$D/pm.json" ||
    fail "pagemap recording restore failed: $(cat "$D/pm.json")"
"$B/snap-split" --mem "$S/mem.img" -o "$D/s.split" -q "$D/pm.ls" || fail "snap-split"
"$B/snap-place" "$D/s.split" -o "$D/p.placed" -q --tier rw=dram --tier ro=dax:"$DAX/a" --tier cold=file:"$D/ssd" ||
    fail "snap-place"

"$SNAPVM" restore --snapshot "$S" --json \
    --wrap "$B/snap-restore $D/p.placed --image $S/mem.img --json -o $D/plain.report --exec --" > "$D/plain.json" ||
    fail "plain restore failed: $(cat "$D/plain.json")"
"$SNAPVM" restore --snapshot "$S" --input "$rec_input" --json \
    --wrap "$B/snap-restore $D/p.placed --image $S/mem.img --json -o $D/uffd.report --exec --record $D/uffd.ls --" \
    > "$D/uffd.json" || fail "recorded restore failed: $(cat "$D/uffd.json") $(cat "$D/uffd.report" 2>/dev/null)"
[ "$(sha256sum "$S/mem.img" | cut -d' ' -f1)" = "$sum0" ] || fail "the image file was written"
"$B/snap-stat" --json "$D/uffd.ls" > "$D/uffd.stat" || fail "snap-stat uffd.ls"
"$B/snap-stat" --json --compare "$D/uffd.ls" "$D/pm.ls" > "$D/cmp.json" || fail "snap-stat compare"
"$B/snap-stat" --json "$D/pm.ls" > "$D/pm.stat" || fail "snap-stat pm.ls"
"$B/snap-stat" --list "$D/uffd.ls" > "$D/uffd.list" || fail "snap-stat --list uffd.ls"
"$B/snap-stat" --list "$D/s.split" > "$D/split.list" || fail "snap-stat --list s.split"
python3 - "$D" <<'PY' || fail "bad recording: $(cat "$D/uffd.report")"
import json, sys
d = sys.argv[1]
j = lambda n: json.load(open(f"{d}/{n}"))
plain, uffd, rep, st, cmp = j("plain.json"), j("uffd.json"), j("uffd.report"), j("uffd.stat"), j("cmp.json")
for r in (plain, uffd):
    assert r["ok"] and r["answer"] == r["expected"] and r["exit_code"] == 0, r
assert rep["vmm"]["exit_status"] == 0 and rep["preload"]["image_mapped"] and "error" not in rep["preload"], rep
assert rep["preload"]["uffd"]["write_protect"] and rep["write_protect"], rep["preload"]
f = rep["stats"]
assert st["method"] == "uffd" and st["writes_known"] and st["touched_pages"] > 0 and st["written_pages"] > 0, st
assert st["touched_pages"] == rep["recorded_pages"] and st["written_pages"] == rep["written_pages"], (st, rep)
assert f["faults"] == f["read_faults"] + f["write_faults"] + f["wp_faults"] and f["read_faults"] + f["write_faults"] == st["touched_pages"], f
# the same function and input as the pagemap recording: nearly the same pages; KVM's async
# page faults always ask for write access, so uffd's written pages are a superset of the
# pages the guest really wrote (pagemap: private copies)
pm = j("pm.stat")
assert cmp["overlap"] >= 0.9 and cmp["jaccard"] >= 0.8, cmp
assert cmp["written_intersection_pages"] >= 0.9 * pm["written_pages"], (cmp, pm["written_pages"])
assert f["foreign_faults"] <= f["write_faults"], f
cls = {}
for line in open(f"{d}/split.list"):
    p = line.split()
    if len(p) == 3 and p[0].isdigit():
        for k in range(int(p[0]), int(p[0]) + int(p[1])): cls[k] = p[2]
pages = [int(l.split()[0]) for l in open(f"{d}/uffd.list") if l[:1].isdigit()]
assert all(0 <= p < st["image_pages"] for p in pages)
share = {}
for p in pages: share[cls.get(p, "?")] = share.get(cls.get(p, "?"), 0) + 1
print("hello: uffd recorded %d pages (%d written; faults: %d read, %d write of which %d KVM async, %d wp); "
      "pagemap %d pages (%d written, %d of them written in uffd's too); jaccard %.3f, overlap %.3f; "
      "by class of the pagemap split: %s"
      % (st["touched_pages"], st["written_pages"], f["read_faults"], f["write_faults"], f["foreign_faults"], f["wp_faults"], cmp["b_pages"], pm["written_pages"],
         cmp["written_intersection_pages"], cmp["jaccard"], cmp["overlap"], share))
print("hello: result %.1f ms plain, %.1f ms recorded (guest %d us vs %d us); recorded run %.0f ms vs %.0f ms"
      % (plain["result_ms"], uffd["result_ms"], plain["guest_us"], uffd["guest_us"], rep["vmm"]["run_ms"],
         j("plain.report")["vmm"]["run_ms"]))
PY
# The recording is a loading set like any other: split, place, restore with reap.
"$B/snap-split" --mem "$S/mem.img" -o "$D/u.split" -q "$D/uffd.ls" || fail "the uffd recording does not split"
"$B/snap-place" "$D/u.split" -o "$D/u.placed" -q --tier rw=dram --tier ro=dax:"$DAX/b" --tier cold=file:"$D/ssd2" ||
    fail "snap-place of the uffd split"
restore_check "$f" --wrap "$B/snap-restore $D/u.placed --strategy reap --image $S/mem.img -q -o $D/reap.report --exec --" ||
    fail "reap from the uffd recording"
[ "$(sha256sum "$S/mem.img" | cut -d' ' -f1)" = "$sum0" ] || fail "the image file was written"
echo ok

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real VM, guest memory on hugetlbfs (issue 10): QEMU's memory-backend-file on a hugetlbfs
# mount with share=off, as a platform with 2 MiB guest pages runs it. For hello and json:
# record a loading set in 2 MiB pages (pagemap, on the snapshot's own image), split and place
# it with 2 MiB pages (rw=dram, ro=dax on /dev/shm, cold=file:), copy the image onto
# hugetlbfs, and restore it there through QEMU under vanilla, reap, faasnap and tiered: the
# answer is right, the preload finds all of the guest's memory in 2 MiB pages when QEMU exits
# (mapping.kernel_page_size_bytes, from /proc/PID/smaps), each schedule says what it did in
# its place (tiered installs RO eagerly, faasnap takes its userfaultfd form), and the image on
# hugetlbfs is never written. Root: the test reserves huge pages and mounts a hugetlbfs of its
# own; both are undone at the end, also on failure.
# usage: restore_hugetlbfs.sh [SNAPKIT_BIN]   (exit 77 = skipped)
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../lib/hugetlbfs.bash"
probe_vm
for t in snap-record snap-split snap-place snap-restore; do
    [ -x "$SNAPKIT_BIN/$t" ] || skip "$t not built"
done
[ -f "$SNAPKIT_BIN/../lib/libsnaprestore.so" ] || skip "libsnaprestore.so not built"
[ "$(id -u)" = 0 ] || skip "mounting hugetlbfs and reserving huge pages need root"
nr=/proc/sys/vm/nr_hugepages
[ -w $nr ] || skip "$nr is not writable"
ensure_snapshot hello
ensure_snapshot json

W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W"
DAX=$(mktemp -d /dev/shm/snapkit-huge-XXXXXX)
MNT=$W/huge
old=$(cat $nr)
cleanup() {
    mountpoint -q "$MNT" && { rm -f "$MNT"/* 2> /dev/null; umount "$MNT"; }
    echo "$old" > $nr
    rm -rf "$DAX"
}
trap cleanup EXIT
B=$SNAPKIT_BIN
rows=()
for f in hello json; do
    S=$VMDIR/$f
    D=$W/$f
    mkdir -p "$D/ssd" "$DAX/$f"
    mib=$(( $(stat -c %s "$S/mem.img") >> 20 ))
    # The image's huge pages, and as many again: QEMU's private mapping of the file reserves its
    # own (vanilla), or the preload's anonymous huge pages replace it (the other three).
    if ! mountpoint -q "$MNT"; then
        echo $((old + 2 * mib / 2 + 32)) > $nr
        [ "$(cat $nr)" -ge $((old + mib + 16)) ] || skip "could not reserve $((mib + 16)) huge pages (nr_hugepages $(cat $nr))"
        mkdir -p "$MNT" && mount -t hugetlbfs -o pagesize=2M,mode=0700 none "$MNT" || fail "mount hugetlbfs"
    fi
    rec_input=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['record_input'])" "$S/meta.json")
    "$SNAPVM" restore --snapshot "$S" --input "$rec_input" --nohuge --cold --json \
        --wrap "$B/snap-record --page-size 2097152 --mem $S/mem.img -m pagemap -q -o $D/rec.ls --" > "$D/record.json" ||
        fail "$f: recording restore failed: $(cat "$D/record.json")"
    "$B/snap-split" --page-size 2097152 --mem "$S/mem.img" -o "$D/s.split" -q "$D/rec.ls" || fail "$f: snap-split"
    "$B/snap-place" "$D/s.split" -o "$D/p.placed" -q --tier rw=dram --tier ro=dax:"$DAX/$f" --tier cold=file:"$D/ssd" \
        > /dev/null || fail "$f: snap-place (2 MiB pages, its defaults)"
    hugetlbfs_copy "$S/mem.img" "$MNT/$f.img" || fail "$f: copy onto hugetlbfs"
    sum0=$(sha256sum "$S/mem.img" | cut -d' ' -f1)
    for s in vanilla reap faasnap tiered; do
        out=$("$SNAPVM" restore --snapshot "$S" --image "$MNT/$f.img" --json \
            --wrap "$B/snap-restore $D/p.placed --strategy $s --image $MNT/$f.img --json -o $D/$s.report --exec --") ||
            fail "$f $s onto hugetlbfs: restore failed: $out $(cat "$D/$s.report" 2>/dev/null)"
        row=$(python3 - "$out" "$D/$s.report" "$s" <<'PY') || fail "$f $s onto hugetlbfs: bad reports: $out"
import json, sys
r = json.loads(sys.argv[1]); p = json.load(open(sys.argv[2])); s = sys.argv[3]
assert r["ok"] and r["answer"] == r["expected"] and r["exit_code"] == 0, r
assert p["vmm"]["exit_status"] == 0 and p["preload"]["image_mapped"] and "error" not in p["preload"], p
m = p["preload"]["mapping"]
assert m["kernel_page_size_bytes"] == 2097152, ("guest memory not all in 2 MiB pages", m)
notes = " ".join(p["plan"]["notes"])
if s != "vanilla": assert p["plan"]["demand"] and p["plan"]["base"] == "anon", p["plan"]
if s == "tiered": assert "RO is installed eagerly into huge pages" in notes, notes
if s == "faasnap": assert "faasnap in its userfaultfd form" in notes, notes
print("%-6s %-8s on hugetlbfs: right answer, result %6.1f ms, guest memory in %d KiB pages, %8d bytes installed eagerly"
      % (r["function"], s, r["result_ms"], m["kernel_page_size_bytes"] >> 10, p.get("eager_bytes", 0)))
PY
        rows+=("$row")
        [ "$(sha256sum "$MNT/$f.img" | cut -d' ' -f1)" = "$sum0" ] || fail "$f $s: the image on hugetlbfs was written"
    done
    rm -f "$MNT/$f.img"
done
printf '%s\n' "${rows[@]}"
echo ok

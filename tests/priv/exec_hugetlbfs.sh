#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# --exec onto guest memory on hugetlbfs (root only: label priv; issue 10). A 2 MiB-page image
# on a hugetlbfs mount, mapped privately by the VMM as QEMU's memory-backend-file does:
# - vanilla maps it as it is: the VMM reads every page right, and its mapping is huge
#   (KernelPageSize 2048 kB in /proc/PID/smaps);
# - reap, tiered and faasnap serve it over userfaultfd into anonymous huge pages (MAP_HUGETLB):
#   the VMM reads every page right, and its guest memory is still huge (KernelPageSize
#   2048 kB); reap also onto a placeholder made there (the image absent);
# - tiered --layered would turn its huge pages into 4 KiB ones (anonymous memory, part files
#   elsewhere): refused before the VMM runs (exit 2, naming hugetlbfs and why);
# - a snapshot of 4 KiB pages onto that memory: reap, faasnap and tiered are refused with one
#   line naming both page sizes; vanilla maps the image as it is (right bytes, still huge);
# - --serve into MAP_HUGETLB memory (fcclient --huge-pages, Firecracker's huge_pages: 2M):
#   every page right, from a 2 MiB snapshot and from a 4 KiB one (the handler fills each huge
#   page from 512 small ones).
# The test reserves 64 huge pages (128 MiB) and mounts a hugetlbfs of its own; both are undone
# at the end, also on failure.
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib/hugetlbfs.bash"
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
for t in snap-split snap-place snap-restore mkfixture maptest; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "skipped: mounting hugetlbfs and reserving huge pages need root"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
nr=/proc/sys/vm/nr_hugepages
[ -w $nr ] || { echo "skipped: $nr is not writable"; exit 77; }
old=$(cat $nr)
mnt=$work/huge
cleanup() {
  mountpoint -q "$mnt" && { rm -f "$mnt"/* 2>/dev/null; umount "$mnt"; }
  echo "$old" > $nr
}
trap cleanup EXIT
echo $((old + 64)) > $nr
[ "$(cat $nr)" -ge $((old + 48)) ] || { echo "skipped: could not reserve huge pages (nr_hugepages $(cat $nr))"; exit 77; }
mkdir -p "$mnt" && mount -t hugetlbfs -o pagesize=2M,mode=0700 none "$mnt" || fail "mount hugetlbfs"

# A 48 MiB image of 2 MiB pages (short runs: every class present), its loading set, split and
# placement (parts on a file tier).
"$bin/mkfixture" img ls 24 3 --page-size 2097152 --max-run 2 > /dev/null || fail "mkfixture"
"$bin/snap-split" -q --page-size 2097152 --mem img -o s.split ls || fail "split"
mkdir -p parts && "$bin/snap-place" -q s.split -o p.placed --tier rw=file:"$work/parts" --tier ro=file:"$work/parts" \
  --tier cold=file:"$work/parts" > /dev/null || fail "place"
to_hugetlbfs() {  # to_hugetlbfs FILE: copy FILE to $mnt/FILE
  hugetlbfs_copy "$1" "$mnt/$1" || fail "copy $1 onto hugetlbfs"
}
to_hugetlbfs img

# vanilla: runs, reads right, and the VMM's mapping of the image is huge.
"$bin/snap-restore" p.placed --strategy vanilla --image "$mnt/img" -q --exec -- \
  "$bin/maptest" "$mnt/img" --expect img --hold-ms 1500 > van.out 2> van.err &
srpid=$!
vmm=""
for _ in $(seq 100); do vmm=$(pgrep -P $srpid maptest || true); [ -n "$vmm" ] && break; sleep 0.05; done
[ -n "$vmm" ] || fail "vanilla: no VMM"
sleep 0.5
kps=$(awk -v f="$mnt/img" '$0 ~ f {on=1; next} on && /^KernelPageSize/ {print $2; exit}' /proc/$vmm/smaps)
wait $srpid || fail "vanilla on hugetlbfs: exit $?: $(cat van.err)"
[ "$kps" = 2048 ] || fail "vanilla: the VMM's mapping of the image has KernelPageSize '$kps' kB, wanted 2048"

# reap, tiered and faasnap serve it over userfaultfd into anonymous huge pages (the preload
# maps them MAP_HUGETLB; snap-restore installs whole 2 MiB pages: RO too under tiered, whose
# layout would be 4 KiB pages, and faasnap's loading set): every page right, and the guest
# memory's mapping (its address from the preload's report) is still huge while the VMM holds it.
for s in reap tiered faasnap; do
  "$bin/snap-restore" p.placed --strategy $s --image "$mnt/img" --json -o $s.json --exec -- \
    "$bin/maptest" "$mnt/img" --expect img --hold-ms 1500 > $s.out 2> $s.err &
  srpid=$!
  vmm=""
  for _ in $(seq 100); do vmm=$(pgrep -P $srpid maptest || true); [ -n "$vmm" ] && break; sleep 0.05; done
  [ -n "$vmm" ] || fail "$s: no VMM"
  sleep 0.7
  cp /proc/$vmm/smaps $s.smaps 2> /dev/null
  wait $srpid || fail "$s onto hugetlbfs: exit $?: $(cat $s.err)"
  grep -q '"wrong_pages": 0' $s.out || fail "$s onto hugetlbfs: $(cat $s.out) $(cat $s.err)"
  addr=$(python3 -c "import json; print(json.load(open('$s.json'))['preload']['mapping']['address'][2:])") || fail "$s: no mapping address in $s.json"
  kps=$(awk -v a="$addr" 'index($1, a "-") == 1 {on=1; next} on && /^KernelPageSize/ {print $2; exit}' $s.smaps)
  [ "$kps" = 2048 ] || fail "$s: the VMM's guest memory at 0x$addr has KernelPageSize '$kps' kB, wanted 2048"
  python3 - $s.json <<'PY' || fail "$s onto hugetlbfs: $(cat $s.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["stats"]["eager_copied_bytes"] > 0 and j["stats"]["faults"] > 0, j["stats"]
# the preload's own look at its guest memory when the VMM exited: all of it 2 MiB pages
assert j["preload"]["mapping"]["kernel_page_size_bytes"] == 2097152, j["preload"]["mapping"]
notes = " ".join(j["plan"]["notes"])
if j["strategy"] == "tiered":
    assert "RO is installed eagerly into huge pages" in notes, notes
if j["strategy"] == "faasnap":
    assert "faasnap in its userfaultfd form" in notes, notes
PY
done

# tiered --layered maps part files (not on hugetlbfs) and lays anonymous memory: refused
# before the VMM runs.
rm -f ran-layered
"$bin/snap-restore" p.placed --strategy tiered --layered --image "$mnt/img" --exec -- sh -c "touch ran-layered" 2> layered.err
rc=$?
[ $rc = 2 ] || fail "tiered --layered onto hugetlbfs: exit $rc, wanted 2: $(cat layered.err)"
grep -q "is on hugetlbfs: the tiered schedule would turn its huge pages into 4 KiB pages" layered.err ||
  fail "tiered --layered onto hugetlbfs: $(cat layered.err)"
[ ! -e ran-layered ] || fail "tiered --layered onto hugetlbfs: the VMM ran"
# The image absent from the host: reap onto a placeholder made on hugetlbfs, every page from
# the parts, and no placeholder left.
"$bin/snap-restore" p.placed --strategy reap --image "$mnt/absent" -q --exec -- "$bin/maptest" "$mnt/absent" --expect img \
  > absent.out 2> absent.err || fail "reap onto a placeholder on hugetlbfs: exit $?: $(cat absent.err)"
grep -q '"wrong_pages": 0' absent.out || fail "reap onto a placeholder on hugetlbfs: $(cat absent.out)"
[ ! -e "$mnt/absent" ] || fail "reap onto a placeholder on hugetlbfs: the placeholder stayed"

# A snapshot of 4 KiB pages (8 MiB: hugetlbfs files are whole huge pages) onto huge memory.
"$bin/mkfixture" img4 ls4 2048 5 > /dev/null || fail "mkfixture 4 KiB"
"$bin/snap-split" -q --mem img4 -o s4.split ls4 || fail "split 4 KiB"
"$bin/snap-place" -q s4.split -o p4.placed --tier rw=file:"$work/parts" --tier ro=file:"$work/parts" \
  --tier cold=file:"$work/parts" > /dev/null || fail "place 4 KiB"
to_hugetlbfs img4
for s in reap faasnap tiered; do
  rm -f ran4-$s
  "$bin/snap-restore" p4.placed --strategy $s --image "$mnt/img4" --exec -- sh -c "touch ran4-$s" 2> $s.err4
  rc=$?
  [ $rc = 2 ] || fail "4 KiB $s onto hugetlbfs: exit $rc, wanted 2: $(cat $s.err4)"
  [ "$(grep -c "error:" $s.err4)" = 1 ] &&
    grep -q "error: p4.placed has 4 KiB pages; the VMM's memory is 2 MiB huge pages ($mnt/img4 is on hugetlbfs), and the $s schedule" $s.err4 &&
    grep -q "hint: .*snap-split --page-size 2097152" $s.err4 || fail "4 KiB $s onto hugetlbfs: $(cat $s.err4)"
  [ ! -e ran4-$s ] || fail "4 KiB $s onto hugetlbfs: the VMM ran"
done
"$bin/snap-restore" p4.placed --strategy vanilla --image "$mnt/img4" -q --exec -- "$bin/maptest" "$mnt/img4" --expect img4 > van4.out 2> van4.err ||
  fail "4 KiB vanilla onto hugetlbfs: $(cat van4.err)"
grep -q '"wrong_pages": 0' van4.out || fail "4 KiB vanilla onto hugetlbfs: $(cat van4.out)"
rm -f "$mnt/img4"

# --serve into MAP_HUGETLB memory: a 2 MiB snapshot and a 4 KiB one, every strategy that
# installs eagerly too; every page right, the balloon read back as zeros.
serve_huge() {  # serve_huge NAME PLACED IMAGE REGIONS ARGS...
  local name=$1 placed=$2 image=$3 regions=$4; shift 4
  timeout 120 "$bin/snap-restore" "$placed" --serve "$work/$name.sock" --json --accept-timeout 30 "$@" > $name.json 2> $name.err &
  local spid=$!
  timeout 120 "$bin/fcclient" --socket "$work/$name.sock" --image "$image" --regions-mib "$regions" --huge-pages --json > $name.client 2> $name.client.err
  local crc=$?
  wait $spid
  local src=$?
  [ $crc = 0 ] && [ $src = 0 ] || fail "$name: client exit $crc, server exit $src: $(cat $name.err $name.client.err)"
  python3 -c "
import json; c = json.load(open('$name.client')); assert c['mismatched_pages'] == 0 and c['balloon_nonzero_pages'] == 0, c" ||
    fail "$name: $(cat $name.client)"
}
for s in vanilla reap tiered; do
  serve_huge huge2m-$s p.placed img 16,32 --strategy $s
  serve_huge huge4k-$s p4.placed img4 6,2 --strategy $s
done
echo "ok: exec_hugetlbfs (all four strategies right and still huge, also onto a placeholder; --layered refused, 4 KiB snapshots named; --serve into MAP_HUGETLB right)"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# --exec onto guest memory on hugetlbfs (root only: label priv; issue 10). A 2 MiB-page image
# on a hugetlbfs mount, mapped privately by the VMM as QEMU's memory-backend-file does:
# - vanilla maps it as it is: the VMM reads every page right, and its mapping is huge
#   (KernelPageSize 2048 kB in /proc/PID/smaps);
# - reap, faasnap and tiered would turn its huge pages into 4 KiB ones (anonymous memory, part
#   files elsewhere): each is refused before the VMM runs (exit 2, naming hugetlbfs and why),
#   not run with exit 0 as before.
# The test reserves 64 huge pages (128 MiB) and mounts a hugetlbfs of its own; both are undone
# at the end, also on failure.
set -u
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
# hugetlbfs takes no write(2): the image goes in through a shared mapping.
python3 - img "$mnt/img" <<'PY' || fail "copy the image onto hugetlbfs"
import mmap, os, sys
src, dst = sys.argv[1:3]
data = open(src, "rb").read()
fd = os.open(dst, os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, len(data))
m = mmap.mmap(fd, len(data), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[:] = data
m.close()
os.close(fd)
PY
cmp -s img "$mnt/img" || fail "the image on hugetlbfs differs"

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

# The schedules that would lay small pages over it are refused before the VMM runs.
for s in reap faasnap tiered; do
  rm -f ran-$s
  "$bin/snap-restore" p.placed --strategy $s --image "$mnt/img" --exec -- sh -c "touch ran-$s" 2> $s.err
  rc=$?
  [ $rc = 2 ] || fail "$s onto hugetlbfs: exit $rc, wanted 2: $(cat $s.err)"
  grep -q "is on hugetlbfs: the $s schedule would turn its huge pages into 4 KiB pages" $s.err ||
    fail "$s onto hugetlbfs: $(cat $s.err)"
  [ ! -e ran-$s ] || fail "$s onto hugetlbfs: the VMM ran"
done
echo "ok: exec_hugetlbfs (vanilla huge, KernelPageSize $kps kB; reap, faasnap, tiered refused)"

# SPDX-License-Identifier: Apache-2.0
# Guest memory on hugetlbfs in the tests (tests/priv/exec_hugetlbfs.sh, tests/vm/restore_hugetlbfs.sh).
# hugetlbfs_copy SRC DST: copy a file onto a hugetlbfs mount, which takes no write(2): the bytes
# go in through a shared mapping (huge pages of the mount's reserve). Fails if the copy differs.
hugetlbfs_copy() {
  python3 - "$1" "$2" <<'PY' && cmp -s "$1" "$2"
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
}

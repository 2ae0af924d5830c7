#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-restore --exec --record: the preload hands the image range to snap-restore as a
# userfaultfd (Firecracker's handshake over a private socket), snap-restore serves every
# fault from the placed artifact and records the first touches. maptest reads every page
# (each must read as the image) and then writes some: the recording must hold every page,
# its written pages must be exactly the pages maptest wrote, and the image must be untouched.
# From plain and zstd-compressed parts, at offset 0 and from page 1024 on; then the refusals.
set -euo pipefail
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$BIN/../lib/libsnaprestore.so" ] || { echo "skipped: libsnaprestore.so not built"; exit 77; }

"$BIN/mkfixture" img ls 8192 7
"$BIN/snap-split" --mem img -o s.split ls
mkdir -p dax ssd
"$BIN/snap-place" s.split -o p.placed --tier rw=dram --tier ro=dax:"$W/dax" --tier cold=file:"$W/ssd" > /dev/null
"$BIN/snap-place" s.split -o z.placed --tier rw=dram --tier ro=dram --tier cold=file:"$W/ssd" --compress > /dev/null
sum0=$(sha256sum img | cut -d' ' -f1)

check() {  # check NAME FIRST_PAGE PAGES
  local n=$1 first=$2 pages=$3
  grep -q '"wrong_pages": 0' $n.out || fail "$n: $(cat $n.out)"
  "$BIN/snap-stat" --json $n.ls > $n.stat || fail "$n: snap-stat"
  "$BIN/snap-stat" --list $n.ls > $n.list || fail "$n: snap-stat --list"
  python3 - $n.json $n.stat $n.list $n.written $first $pages <<'PY' || fail "$n: $(cat $n.json)"
import json, sys
r = json.load(open(sys.argv[1])); st = json.load(open(sys.argv[2]))
first, pages = int(sys.argv[5]), int(sys.argv[6])
rows = [l.split() for l in open(sys.argv[3]) if l[:1].isdigit()]
touched = {int(x[0]) for x in rows}
written = {int(x[0]) for x in rows if "W" in x[1]}
wrote = {int(l) for l in open(sys.argv[4]) if l.strip()}
assert r["vmm"]["exit_status"] == 0 and r["preload"]["image_mapped"] and "error" not in r["preload"], r["preload"]
assert r["preload"]["uffd"]["write_protect"] and r["write_protect"], r
assert st["method"] == "uffd" and st["writes_known"] and st["timed"], st
assert touched == set(range(first, first + pages)), (len(touched), min(touched), max(touched))  # maptest reads every page
assert written == wrote, (len(written), len(wrote), sorted(written ^ wrote)[:10])
f = r["stats"]
assert r["recorded_pages"] == pages and r["written_pages"] == len(wrote), r
assert f["read_faults"] == pages and f["wp_faults"] == len(wrote) and f["faults"] == f["read_faults"] + f["write_faults"] + f["wp_faults"], f
print("%s: %d pages recorded, %d written, %d faults" % (sys.argv[1], len(touched), len(written), f["faults"]))
PY
}

for placed in p.placed z.placed; do
  n=${placed%.placed}
  "$BIN/snap-restore" $placed --image img --json -o $n.json --exec --record $n.ls -- \
    "$BIN/maptest" img --writes 400 --seed 5 --written $n.written > $n.out || fail "$placed: exit $? ($(cat $n.out))"
  check $n 0 8192
  # the recording is a loading set of this image: it splits against it
  "$BIN/snap-split" --mem img -o $n.split -q $n.ls || fail "$placed: the recording does not split against its image"
done
# the image mapped from page 1024 on: image pages, not mapping pages, are recorded
"$BIN/snap-restore" p.placed --image img --json -o off.json --exec --record off.ls -- \
  "$BIN/maptest" img --offset-pages 1024 --writes 100 --written off.written > off.out || fail "offset: $(cat off.out)"
check off 1024 7168
[ "$(sha256sum img | cut -d' ' -f1)" = "$sum0" ] || fail "the image was written"

# A VMM that never maps the image: no loading set, exit 1 as without --record.
set +e
"$BIN/snap-restore" p.placed --image img --exec --record none.ls -- true > none.out 2> none.err
rc=$?
set -e
[ $rc = 1 ] && grep -q "never mapped" none.err && [ ! -e none.ls ] || fail "never mapped: exit $rc $(cat none.err)"
# A shared mapping is refused inside the VMM (exit 1) before anything is handed over.
set +e
"$BIN/snap-restore" p.placed --image img --json -o shared.json --exec --record sh.ls -- "$BIN/maptest" img --shared > sh.out 2> sh.err
rc=$?
set -e
[ $rc = 1 ] && grep -q "maps the image shared" sh.err || fail "shared: exit $rc $(cat sh.err)"

expect() {  # expect CODE PATTERN CMD...
  local code=$1 pat=$2; shift 2
  set +e; "$@" > e.out 2> e.err; local rc=$?; set -e
  [ $rc = "$code" ] || fail "$*: exit $rc, wanted $code ($(cat e.err))"
  grep -q "$pat" e.err || fail "$*: stderr $(cat e.err), wanted $pat"
}
for s in reap faasnap tiered; do
  expect 2 "needs --strategy vanilla" "$BIN/snap-restore" p.placed --strategy $s --image img --exec --record x.ls -- true
done
expect 2 "works with --serve or --exec" "$BIN/snap-restore" p.placed --materialize m.img --record x.ls
echo ok

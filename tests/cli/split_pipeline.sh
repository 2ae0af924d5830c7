#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The issue-2 pipeline as a user runs it: snap-record --method pagemap → snap-split →
# snap-stat --json. Checks against ground truth: `zero` and `rw` exactly, `ro` ⊇ the pages
# only read; the split reproduces every page of the image; same inputs give the same bytes.
set -eu
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
[ -r /proc/self/pagemap ] || { echo "skipped: no /proc/self/pagemap"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

"$bin/mkimage" img --mib 32 --zero-pct 60 --seed 21
"$bin/snap-record" -q --method pagemap --mem img -o run.ls -- \
  "$bin/rwload" img --seed 5 --reads 1500 --writes 400 --truth truth.txt
"$bin/snap-split" --mem img -o run.split run.ls
"$bin/snap-stat" --json run.split > split.json

# Ground truth from the image bytes and the workload's own list of touches.
python3 - img truth.txt split.json <<'PY'
import json, sys
img, truth, rep = sys.argv[1:4]
zero = set()
with open(img, 'rb') as f:
    n = 0
    while True:
        b = f.read(4096)
        if not b: break
        if not any(b): zero.add(n)
        n += 1
written, read = set(), set()
for line in open(truth):
    page, acc = line.split()[:2]
    (written if 'W' in acc else read).add(int(page))
read -= written
r = json.load(open(rep))
exp_rw = len(written - zero)
exp_ro_min = len(read - zero)
errors = []
if r['image_pages'] != n: errors.append(f"pages {r['image_pages']} != {n}")
if r['zero_pages'] != len(zero): errors.append(f"zero {r['zero_pages']} != {len(zero)}")
if r['rw_pages'] != exp_rw: errors.append(f"rw {r['rw_pages']} != {exp_rw}")
if r['ro_pages'] < exp_ro_min: errors.append(f"ro {r['ro_pages']} < {exp_ro_min} pages only read")
if r['zero_pages'] + r['ro_pages'] + r['rw_pages'] + r['cold_pages'] != n: errors.append("classes do not add up")
if errors:
    print("FAIL: " + "; ".join(errors)); sys.exit(1)
print(f"ok: zero {r['zero_pages']} and rw {r['rw_pages']} exact, ro {r['ro_pages']} >= {exp_ro_min} only-read pages, cold {r['cold_pages']}")
PY

# Round trip: every page of the image comes back from the split.
"$bin/snap-stat" --verify --mem img run.split > verify.txt || fail "split does not reproduce the image"
grep -q "every page matches" verify.txt || fail "no round-trip confirmation: $(cat verify.txt)"
# Determinism.
"$bin/snap-split" --mem img -o again.split run.ls
cmp -s run.split again.split || fail "same inputs gave different split bytes"
# Through pipes: loading set on stdin, split on stdout.
"$bin/snap-split" --mem img -o - - < run.ls > piped.split
cmp -s run.split piped.split || fail "split through pipes differs"
"$bin/snap-stat" --json - < run.ls | grep -q '"touched_pages"' || fail "snap-stat cannot read a loading set from stdin"
cat run.ls | "$bin/snap-stat" --compare run.ls - | grep -q "jaccard 1.0000" || fail "snap-stat cannot compare with a loading set on stdin"
# Merging: a second recording; union ⊇ each, intersection ⊆ each.
"$bin/snap-record" -q --method pagemap --mem img -o run2.ls -- "$bin/rwload" img --seed 6 --reads 1500 --writes 400
"$bin/snap-split" --mem img --merge union -o u.split run.ls run2.ls
"$bin/snap-split" --mem img --merge intersect -o i.split run.ls run2.ls
touched() { "$bin/snap-stat" --json "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["touched_pages"])'; }
[ "$(touched u.split)" -ge "$(touched run.split)" ] || fail "union is smaller than one of its sets"
[ "$(touched i.split)" -le "$(touched run.split)" ] || fail "intersection is larger than one of its sets"
"$bin/snap-stat" --compare run.ls run2.ls | grep -q jaccard || fail "no comparison of two loading sets"
# A mincore loading set has no R/W information: touched pages are RO by default, RW on request.
"$bin/snap-record" -q --method mincore --mem img -o mc.ls -- "$bin/rwload" img --seed 5 --reads 200 --writes 50
"$bin/snap-split" --mem img -o mc.split mc.ls 2> mc.err
grep -q "no read/write information" mc.err || fail "mincore split did not say how touched pages were classed"
rw=$("$bin/snap-stat" --json mc.split | python3 -c 'import json,sys; print(json.load(sys.stdin)["rw_pages"])')
[ "$rw" = 0 ] || fail "mincore split has rw pages without --assume-written"
"$bin/snap-split" --mem img --assume-written -o mcw.split mc.ls
rw=$("$bin/snap-stat" --json mcw.split | python3 -c 'import json,sys; print(json.load(sys.stdin)["rw_pages"])')
[ "$rw" -gt 0 ] || fail "--assume-written gave no rw pages"
echo "ok: pipeline, round trip, determinism, pipes, merge, mincore classes"

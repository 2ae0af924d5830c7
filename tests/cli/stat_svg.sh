#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-stat --svg: the page map of a split, a loading set and a placed artifact, and the
# comparisons of two loading sets and of two splits, are well-formed SVG (XML) that names the
# file, the page size and the legend's classes, has one path of cells per class present and a
# loading-order panel, and renders to a PNG of its declared size with rsvg-convert (a declared
# dependency, scripts/deps.txt: missing, the test fails). --svg - puts the picture alone on
# stdout; a failed run leaves an existing picture alone.
set -u
bin=${1:?bin dir}
td=${SNAPKIT_TESTDATA:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
command -v rsvg-convert > /dev/null || fail "rsvg-convert is missing (Debian librsvg2-bin, listed in scripts/deps.txt)"
st() { timeout 20 "$bin/snap-stat" "$@"; }

# check SVG TITLE_PART CLASS... : XML, title, legend and cell paths, PNG rendering.
check() {
  local svg=$1 title=$2; shift 2
  python3 - "$svg" "$title" "$@" <<'EOF' || fail "$svg: $(head -c 300 "$svg")"
import sys, xml.etree.ElementTree as ET
path, title, classes = sys.argv[1], sys.argv[2], sys.argv[3:]
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(path).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
text = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
assert title in text, (title, text[:200])
assert "4 KiB" in text, "the page size is not in the title"
legend = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}tspan")}
for c in classes:
    assert c in legend, (c, legend)
cells = {p.get("data-category") for p in root.iter("{http://www.w3.org/2000/svg}path")}
assert cells, "no cells drawn"
assert cells <= set(classes), (cells, classes)
assert "loading order" in text or "A:" in text, "no loading-order panel and no side-by-side maps"
# The axis is in image offsets.
assert "MiB" in text or "KiB" in text
EOF
  rsvg-convert "$svg" -o "${svg%.svg}.png" 2> rsvg.err || fail "rsvg-convert $svg: $(cat rsvg.err)"
  python3 - "${svg%.svg}.png" "$svg" <<'EOF' || fail "${svg%.svg}.png is not the picture"
import struct, sys, xml.etree.ElementTree as ET
png = open(sys.argv[1], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000, len(png)
w, h = struct.unpack(">II", png[16:24])
root = ET.parse(sys.argv[2]).getroot()
assert (w, h) == (int(float(root.get("width"))), int(float(root.get("height")))), (w, h)
assert 400 <= w <= 4000 and 200 <= h <= 4000, (w, h)
EOF
  echo "ok: $svg ($(stat -c %s "$svg") bytes) renders"
}

st --svg split.svg "$td/pagemap.split" > split.txt || fail "--svg of a split"
grep -q 'testdata/pagemap.split: split of' split.txt || fail "--svg FILE: the report is still printed"
check split.svg "pagemap.split: split of a 1 MiB image" zero cold ro rw
st --svg ls.svg "$td/uffd.ls" > /dev/null || fail "--svg of a loading set"
check ls.svg "uffd.ls: loading set (uffd)" written read untouched
st --svg mincore.svg "$td/mincore.ls" > /dev/null || fail "--svg of a mincore loading set"
check mincore.svg "mincore.ls: loading set (mincore)" touched untouched
st --svg placed.svg "$td/placed/image.placed" > /dev/null || fail "--svg of a placed artifact"
check placed.svg "image.placed: placed artifact" zero cold ro rw
# Comparisons: two testdata loading sets; two splits of one image that differ (touched pages
# of a mincore loading set are RO, of a pagemap one RO or RW).
st --compare --svg cmp.svg "$td/pagemap.ls" "$td/mincore.ls" > cmp.txt || fail "--compare --svg of two loading sets"
grep -q jaccard cmp.txt || fail "--compare --svg: the comparison is still printed"
check cmp.svg "pagemap.ls vs B" both "only A" "only B" neither
"$bin/snap-split" -q --mem "$td/image.mem" -o m.split "$td/mincore.ls" || fail "snap-split"
st --compare --svg cmps.svg "$td/pagemap.split" m.split > /dev/null || fail "--compare --svg of two splits"
check cmps.svg "pagemap.split vs B m.split" zero cold ro rw
grep -q 'rw in A, ro in B: 18 pages' cmps.svg || fail "the split comparison does not name the move of the RW pages"

# --svg -: the picture alone on stdout (a report only with -o REPORT).
st --svg - "$td/pagemap.split" > out.svg || fail "--svg -"
check out.svg "pagemap.split: split of" zero cold ro rw
st --json --svg - -o rep.json "$td/pagemap.split" > out2.svg || fail "--svg - -o REPORT"
cmp -s out.svg out2.svg || fail "--svg - with -o REPORT: another picture"
python3 -c 'import json; assert json.load(open("rep.json"))["kind"] == "split"' || fail "-o REPORT beside --svg -"
# Same input, same picture (the SVG is deterministic).
st --svg again.svg "$td/pagemap.split" > /dev/null && cmp -s split.svg again.svg || fail "two runs, two pictures"
# A bad artifact: exit 3, the picture there is left alone; --svg with two files needs --compare.
cp split.svg keep.svg
head -c 4096 "$td/pagemap.split" > half.split
rc=0; st --svg keep.svg half.split > /dev/null 2>&1 || rc=$?
[ $rc = 3 ] && cmp -s split.svg keep.svg || fail "a failed --svg run: exit $rc, or the picture changed"
rc=0; st --svg two.svg "$td/pagemap.ls" "$td/uffd.ls" > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] && [ ! -e two.svg ] || fail "--svg with two files and no --compare: exit $rc"
rc=0; st --svg big.svg --width 600 "$td/pagemap.split" > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "--svg --width 600: exit $rc, expected 2"
# Bounded by cells, not pages: a 64 MiB image (16384 pages, two a cell) at the default size.
"$bin/mkfixture" big.mem big.ls 16384 > /dev/null || fail "mkfixture"
"$bin/snap-split" -q --mem big.mem -o big.split big.ls || fail "snap-split big"
st --svg big.svg big.split > /dev/null || fail "--svg of a 16384-page split"
check big.svg "big.split: split of a 64 MiB image" zero cold ro rw
[ "$(stat -c %s big.svg)" -lt 1500000 ] || fail "big.svg is $(stat -c %s big.svg) bytes"
echo "ok: snap-stat --svg"

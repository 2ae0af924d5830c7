#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/plot.sh draws the bench/restore plots from a run's JSON (bench/sample-run.json: three
# functions of a real run, trimmed): one SVG per cache state that rsvg-convert renders to a PNG
# of the SVG's size, holding every function and strategy; a second run leaves the SVGs as
# they were (same inode and mtime); anything but a bench/restore run is refused with exit 3.
set -u
root=${SNAPKIT_ROOT:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
for t in gnuplot rsvg-convert python3; do
  command -v $t > /dev/null || { echo "skipped: $t is not installed (gnuplot-nox, librsvg2-bin)"; exit 77; }
done
fail() { echo "FAIL: $*"; exit 1; }
plot=$root/bench/plot.sh
sample=$root/bench/sample-run.json

"$plot" "$sample" plots > run1.out 2> run1.err || fail "plot.sh: exit $?: $(cat run1.err)"
for st in cold warm; do
  svg=plots/restore-$st.svg
  [ -s "$svg" ] || fail "no $svg: $(cat run1.out run1.err)"
  for word in hello json image vanilla reap faasnap tiered 'physical bound' "page cache $st"; do
    grep -q "$word" "$svg" || fail "$svg lacks '$word'"
  done
  rsvg-convert -o "$st.png" "$svg" 2> rsvg.err || fail "rsvg-convert $svg: $(cat rsvg.err)"
  python3 - "$st.png" << 'PY' || fail "$st.png is not a 900x480 PNG"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", "not a PNG"
w, h = struct.unpack(">II", b[16:24])
assert (w, h) == (900, 480), (w, h)
assert len(b) > 20000, len(b)  # bars, labels and a legend, not a blank page
PY
done
# The bars are the data: per strategy colour one legend swatch and a bar per function (three),
# and on the log scale the heights keep the sample's order: cold, vanilla (57-112 ms) above
# tiered (1.3-3.9 ms) for each function, by more than a decade's height.
python3 - plots/restore-cold.svg << 'PY' || fail "the cold plot's bars do not show the sample's figures"
import re, sys
svg = open(sys.argv[1]).read()
bars = {}
for colour, pts in re.findall(r"<polygon fill = 'rgb\(\s*(\d+,\s*\d+,\s*\d+)\)'[^>]*points = '([^']*)'", svg):
    xy = [tuple(map(float, p.split(","))) for p in pts.split()]
    ys = [y for _, y in xy]
    bars.setdefault(colour.replace(" ", ""), []).append((min(x for x, _ in xy), max(ys) - min(ys)))
vanilla, tiered = sorted(bars["136,136,136"]), sorted(bars["46,158,79"])
assert len(vanilla) == len(tiered) == 4, (len(vanilla), len(tiered))  # legend + 3 functions
# The legend swatch is the right-most (outside, right); the bars are the first three by x.
for (_, hv), (_, ht) in zip(vanilla[:3], tiered[:3]):
    assert hv > ht * 1.3 and hv - ht > 40, (hv, ht)
PY

# Unchanged: the second run keeps both files.
before=$(stat -c '%i %y' plots/*.svg)
sleep 1.1
"$plot" "$sample" plots > run2.out 2> run2.err || fail "second run: $(cat run2.err)"
[ "$(grep -c '(unchanged)' run2.out)" = 2 ] || fail "second run did not say unchanged: $(cat run2.out)"
[ "$(stat -c '%i %y' plots/*.svg)" = "$before" ] || fail "the second run rewrote an unchanged SVG"
ls -A plots | grep -q tmp && fail "temporaries left in plots/: $(ls -A plots)"

# Refusals: not a run (exit 3, one error line naming the file), usage (exit 2).
echo '{"functions": 3}' > bad.json
"$plot" bad.json plots > bad.out 2> bad.err; rc=$?
[ $rc = 3 ] && grep -q '^bench/plot.sh: error: bad.json: not a bench/restore --json run' bad.err || fail "bad.json: exit $rc: $(cat bad.err)"
"$plot" > /dev/null 2>&1; rc=$?
[ $rc = 2 ] || fail "no argument: exit $rc"
echo "ok: bench/plot.sh: two SVGs rendered to PNG, unchanged on a rerun, a bad run refused"

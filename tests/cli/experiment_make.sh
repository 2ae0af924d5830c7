#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/experiment.mk from a copy of scripts/ in a scratch directory, on the built tools: the
# whole experiment (image, two recorded inputs, merge + split, place, four strategies, table,
# plot) runs; the table holds every strategy and input with every page verified and the SVG
# renders; a second make does nothing; touching one input reruns only what depends on it; an
# input touched without a change whose step leaves its output unchanged reruns nothing after
# that step; a failing step leaves every output as it was; make -j2 from clean gives the same
# deterministic columns (page counts, part digests). Without the tools, make builds them first
# (make -n shows scripts/setup.sh, once).
set -u
bin=${1:?bin dir}
root=${SNAPKIT_ROOT:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
for t in snap-record snap-split snap-place snap-restore mkimage rwload replay; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
[ -f "$bin/../lib/libsnaprestore.so" ] || { echo "skipped: libsnaprestore.so not built"; exit 77; }
for t in make gnuplot rsvg-convert; do
  command -v $t > /dev/null || { echo "skipped: $t is not installed"; exit 77; }
done
[ -r /proc/self/pagemap ] || { echo "skipped: no /proc/self/pagemap"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
cp -r "$root/scripts" scripts
M=(make -f scripts/experiment.mk BIN="$bin")
O=build/experiment
# tools LOG: the tools a make run ran, in order, one per line (snap-*, mkimage, rwload via record, replay, table, plot)
tools() { grep -oE '(^|/)(snap-[a-z]+|mkimage|python3 [^ ]*table.py|gnuplot) ' "$1" | sed 's|^/||; s| $||; s|python3 .*|table|'; }
# stamp FILE...: inode and mtime of each
stamps() { for f in "$@"; do stat -c '%n %i %.9Y' "$f"; done; }
# deterministic FILE: the table's columns that do not depend on timing
deterministic() { cut -d, -f1-8,13-15 "$1"; }

# 0. Without the tools, the set-up builds them first (one run of scripts/setup.sh).
"${M[@]}" -n BIN="$work/no-bin" > nobin.out 2>&1
[ "$(grep -c 'scripts/setup.sh' nobin.out)" = 1 ] || fail "make -n without tools: $(head -5 nobin.out)"

# 1. From clean: everything, in one make.
"${M[@]}" > run1.out 2>&1 || fail "make: $(tail -5 run1.out)"
for f in results.csv results.json results.svg fn.split fn.placed a.ls b.ls; do [ -s $O/$f ] || fail "no $O/$f"; done
python3 - $O/results.json << 'PY' || fail "results: $(cat $O/results.csv)"
import json, sys
r = json.load(open(sys.argv[1]))
rows = r["rows"]
assert [(x["strategy"], x["input"]) for x in rows] == [(s, i) for s in ("vanilla", "reap", "faasnap", "tiered") for i in "ab"], rows
for x in rows:
    assert x["mismatched_pages"] == 0 and x["touched_pages"] > 0 and x["verified_pages"] >= x["touched_pages"], x
    assert x["written_pages"] == 80 and x["restore_to_last_touch_us"] > 0, x
sp = r["split"]
assert sp["image_pages"] == 16384 and sp["rw_pages"] > 0 and sp["ro_pages"] > 0 and sp["cold_pages"] > 0 and sp["zero_pages"] > 0, sp
assert any(x["eager_bytes"] > 0 for x in rows if x["strategy"] == "reap"), rows
PY
rsvg-convert -o plot.png $O/results.svg 2> rsvg.err && [ "$(head -c 4 plot.png | od -An -c | tr -d ' ')" = '211PNG' ] ||
  fail "results.svg does not render: $(cat rsvg.err)"
ls -A $O $O/runs | grep -q 'tmp' && fail "temporaries left: $(ls -A $O $O/runs)"
cp $O/results.csv run1.csv

# 2. A second make does nothing.
"${M[@]}" -q || fail "make -q after make: exit $?"
"${M[@]}" > run2.out 2>&1 || fail "second make: $(cat run2.out)"
[ -z "$(tools run2.out)" ] || fail "the second make ran: $(tools run2.out | tr '\n' ' ')"

# 3. One input touched: its recording and what follows rerun; the other input and the image do not.
keep=$(stamps $O/image.mem $O/a.ls)
sleep 1.1; touch scripts/experiment/input-b.args
"${M[@]}" > run3.out 2>&1 || fail "make after touching input-b: $(tail -5 run3.out)"
t3=$(tools run3.out | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
[ "$t3" = "gnuplotx1 snap-placex1 snap-recordx1 snap-restorex8 snap-splitx1 tablex1 " ] || fail "touching input-b ran: $t3"
grep -q -- '-o build/experiment/b.ls' run3.out && ! grep -q -- '-o build/experiment/a.ls' run3.out || fail "the wrong input was re-recorded"
[ "$(stamps $O/image.mem $O/a.ls)" = "$keep" ] || fail "the image or a.ls was rewritten"
"${M[@]}" -q || fail "make -q after the rerun: exit $?"

# 4. place.args touched, not changed: snap-place reruns, leaves fn.placed as it was, and no restore,
#    table or plot reruns; nothing is pending afterwards.
keep=$(stamps $O/fn.placed $O/runs/*.json $O/results.*)
sleep 1.1; touch scripts/experiment/place.args
"${M[@]}" > run4.out 2>&1 || fail "make after touching place.args: $(tail -5 run4.out)"
[ "$(tools run4.out | tr '\n' ' ')" = "snap-place " ] || fail "a no-op touch of place.args ran: $(tools run4.out | tr '\n' ' ')"
[ "$(stamps $O/fn.placed $O/runs/*.json $O/results.*)" = "$keep" ] || fail "an unchanged placement rewrote files"
"${M[@]}" -q || fail "make -q after the unchanged placement: exit $?"
"${M[@]}" > run4b.out 2>&1 && [ -z "$(tools run4b.out)" ] || fail "make after the unchanged placement ran: $(cat run4b.out)"

# 5. A failing step (a bad option in place.args): make fails, every output is as it was, the step
#    stays pending; with the input repaired, make completes.
cp scripts/experiment/place.args place.args.good
keep=$(stamps $O/fn.placed $O/fn.placed.json $O/results.csv)
echo '--tier bogus' > scripts/experiment/place.args
"${M[@]}" > run5.out 2>&1 && fail "make succeeded with a bad place.args"
grep -q 'snap-place: error:' run5.out || fail "no snap-place error line: $(tail -3 run5.out)"
[ "$(stamps $O/fn.placed $O/fn.placed.json $O/results.csv)" = "$keep" ] || fail "a failed step changed outputs"
"${M[@]}" -q && fail "make -q after a failed step says up to date"
ls -A $O | grep -q 'tmp' && fail "temporaries left after the failure: $(ls -A $O)"
cp place.args.good scripts/experiment/place.args
"${M[@]}" > run5b.out 2>&1 || fail "make after repairing place.args: $(tail -5 run5b.out)"
"${M[@]}" -q || fail "make -q after the repair: exit $?"

# 6. From clean with -j2: the same deterministic columns as the first run.
"${M[@]}" clean > /dev/null
[ ! -e $O ] || fail "make clean left $O"
"${M[@]}" -j2 > run6.out 2>&1 || fail "make -j2: $(tail -5 run6.out)"
diff <(deterministic run1.csv) <(deterministic $O/results.csv) > j2.diff || fail "make -j2 gave another table: $(cat j2.diff)"
"${M[@]}" -q || fail "make -q after make -j2: exit $?"
echo "ok: experiment.mk: $(($(wc -l < $O/results.csv) - 1)) rows, incremental, unchanged steps stop the rerun, -j2 the same"

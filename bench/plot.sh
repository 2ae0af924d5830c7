#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/plot.sh: SVG plots of a `bench/restore --json` run, drawn by gnuplot (Debian gnuplot-nox).
#
#   bench/plot.sh RUN.json [OUTDIR]        (OUTDIR defaults to the current directory)
#
# For each cache state in the run (cold, warm): OUTDIR/restore-STATE.svg, restore-to-last-touch
# per function and strategy (main placement), log scale, with the physical bound (FACTS.md costs
# x pages per class, bound_ns) marked on each function as a black bar and the all-in-DRAM floor
# (main/dram/warm: the touches alone, every page already private in DRAM) as a dashed one where
# the run has it. Each SVG is written under a temporary
# name and renamed, and left as it was when its bytes did not change (same mtime: make-friendly).
# Exit 0, 1 if gnuplot fails, 2 for usage, 3 if RUN.json is not a bench/restore run.
set -euo pipefail
prog=bench/plot.sh
usage() { sed -n '3,5p' "$0" | sed 's/^# \{0,1\}//'; }
case ${1:-} in -h | --help) usage; exit 0 ;; '') usage >&2; exit 2 ;; esac
[ $# -le 2 ] || { echo "$prog: error: too many arguments" >&2; usage >&2; exit 2; }
run=$1 out=${2:-.}
[ -f "$run" ] || { echo "$prog: error: $run: no such file" >&2; exit 3; }
command -v gnuplot > /dev/null || { echo "$prog: error: gnuplot: not found" >&2; echo "$prog: hint: apt-get install gnuplot-nox" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per cache state, no header line (gnuplot would count it as a row): function, the
# four strategies (us), bound (us), floor (us or NaN).
python3 - "$run" "$tmp" << 'PY' || exit $?
import json, sys
path, tmp = sys.argv[1], sys.argv[2]
try:
    run = json.load(open(path))
    fns = run["functions"]
    assert isinstance(fns, list) and fns and all("replay" in f and "bound_ns" in f for f in fns)
except Exception as e:
    sys.stderr.write("bench/plot.sh: error: %s: not a bench/restore --json run (%s)\n" % (path, e or type(e).__name__))
    sys.exit(3)
strategies = ("vanilla", "reap", "faasnap", "tiered")
states = [s for s in ("cold", "warm") if any("main/%s/%s" % (x, s) in f["replay"] for f in fns for x in strategies)]
if not states:
    sys.stderr.write("bench/plot.sh: error: %s: no main/STRATEGY/cold or warm cells\n" % path)
    sys.exit(3)
us = lambda cell, key="restore_to_last_touch_ns": "%.1f" % (cell[key] / 1000.0) if cell else "NaN"
for st in states:
    with open("%s/%s.dat" % (tmp, st), "w") as f:
        for fn in sorted(fns, key=lambda x: x["name"]):
            r = fn["replay"]
            cells = [us(r.get("main/%s/%s" % (x, st))) for x in strategies]
            f.write(" ".join([fn["name"]] + cells + ["%.1f" % (fn["bound_ns"] / 1000.0), us(r.get("main/dram/warm"), "touch_ns")]) + "\n")
open(tmp + "/states", "w").write(" ".join(states) + "\n")
open(tmp + "/count", "w").write("%d\n" % len(fns))
meta = "%d runs per cell" % run.get("runs", 0)
if run.get("gaps"):
    meta += ", gaps x%g" % run["gaps"]
open(tmp + "/meta", "w").write(meta + "\n")
PY

for st in $(cat "$tmp/states"); do
  svg=$out/restore-$st.svg
  gnuplot -e "dat='$tmp/$st.dat'; out='$tmp/$st.svg'; state='$st'; n=$(cat "$tmp/count"); meta='$(cat "$tmp/meta")'" /dev/stdin << 'GP' 2> "$tmp/gnuplot.err" ||
set terminal svg size 900,480 dynamic enhanced font "sans,11" background "white"
set output out
set title sprintf("bench/restore: restore to last touch, page cache %s (replay, median of %s)", state, meta)
set logscale y
set format y "10^{%L}"
set ylabel "microseconds (log scale)"
set grid ytics mytics
set key outside right top vertical
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics nomirror rotate by -25
set yrange [10:*]
set xrange [-0.6:n-0.4]
# Cluster i is centred on i, its 4 bars 1/5 wide each (a gap of 1): the bound and the floor
# span the cluster, i +- 0.4.
plot dat using 2:xtic(1) title "vanilla" lc rgb "#888888", \
     '' using 3 title "reap" lc rgb "#3a78c3", \
     '' using 4 title "faasnap" lc rgb "#e08a1e", \
     '' using 5 title "tiered" lc rgb "#2e9e4f", \
     '' using 0:6:($0-0.4):($0+0.4) with xerrorbars lw 2 lc rgb "black" pt 0 title "physical bound", \
     '' using 0:7:($0-0.4):($0+0.4) with xerrorbars lw 1 dt 2 lc rgb "#aa0000" pt 0 title "all in DRAM (warm floor)"
GP
  { echo "$prog: error: gnuplot: $(head -3 "$tmp/gnuplot.err")" >&2; exit 1; }
  # An unchanged plot keeps its mtime (and inode).
  if cmp -s "$tmp/$st.svg" "$svg"; then
    echo "$svg (unchanged)"
  else
    cp "$tmp/$st.svg" "$svg.tmp.$$" && mv -f "$svg.tmp.$$" "$svg"
    echo "$svg"
  fi
done

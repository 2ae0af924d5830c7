# SPDX-License-Identifier: Apache-2.0
# The experiment's plot (scripts/experiment.mk): restore-to-last-touch per strategy and input,
# log scale, the plan's set-up (ready) marked on each bar.
#   gnuplot -e "csv='results.csv'; out='results.svg'" scripts/experiment/plot.gp
set datafile separator ","
set terminal svg size 760,440 dynamic enhanced font "sans,11" background "white"
set output out
set title "snapkit experiment: restore, the input's loading set replayed and every page verified"
set logscale y
set ylabel "microseconds (log scale)"
set xtics rotate by -30 nomirror
set grid ytics
set style fill solid 0.75 border -1
set boxwidth 0.7
set key top left
# Colour by strategy: four rows of the same strategy are two inputs side by side.
strategy_colour(s) = s eq "vanilla" ? 0x888888 : s eq "reap" ? 0x3a78c3 : s eq "faasnap" ? 0xe08a1e : 0x2e9e4f
plot csv using 0:(column("restore_to_last_touch_us")):(0.7):(strategy_colour(strcol("strategy"))):xtic(strcol("strategy")."/".strcol("input")) \
       with boxes lc rgb variable title "restore to last touch", \
     csv using 0:(column("ready_us")) with points pt 7 ps 0.8 lc rgb "black" title "ready (plan applied)"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-record --method pagemap on rwload: the written set equals the truth exactly, every
# page the workload read is recorded (read or written), and the last touches right before
# exit are caught by the final scan — also when exit_group() comes from a non-leader thread.
set -eu
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
mkdir -p "$work" && cd "$work"
for t in snap-record rwload mkimage; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
[ -r /proc/self/pagemap ] || { echo "skipped: no /proc/self/pagemap"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

"$bin/mkimage" img --mib 64 --zero-pct 0 --seed 7
check() {  # check NAME: compares NAME.ls against NAME.truth
  "$bin/snap-stat" --list "$1.ls" > "$1.list"
  awk '$2 == "W" {print $1}' "$1.truth" | sort > "$1.tw"
  awk '$2 ~ /W/ {print $1}' "$1.list" | sort > "$1.rw"
  cmp -s "$1.tw" "$1.rw" || fail "$1: written set differs from the truth ($(wc -l < "$1.rw") recorded, $(wc -l < "$1.tw") true)"
  awk '{print $1}' "$1.truth" | sort > "$1.tall"
  awk '{print $1}' "$1.list" | sort > "$1.all"
  missing=$(comm -23 "$1.tall" "$1.all" | wc -l)
  [ "$missing" = 0 ] || fail "$1: $missing touched pages not recorded"
  # The phase-3 pages were touched after the last periodic scan could run.
  echo "ok: $1: $(wc -l < "$1.all") pages recorded, $(wc -l < "$1.rw") written (exact)"
}

# 1. Default interval; a long pause so several scans happen before the final touches.
"$bin/snap-record" --method pagemap --mem img -o run1.ls --json -- \
    "$bin/rwload" img --seed 11 --reads 3000 --writes 800 --truth run1.truth --pause-ms 300 > run1.json
grep -q '"final_scan":"exit-stop"' run1.json || fail "run1: no final scan at the exit stop: $(cat run1.json)"
grep -q '"exit_status":0' run1.json || fail "run1: exit status not reported"
check run1

# 2. Only the final scan (no timer, no RSS trigger): everything must come from the exit stop.
"$bin/snap-record" --method pagemap --interval 0 --rss-trigger 0 --mem img -o run2.ls -- \
    "$bin/rwload" img --seed 12 --reads 1000 --writes 300 --truth run2.truth --pause-ms 50
check run2

# 3. exit_group() from a thread that is not the leader.
"$bin/snap-record" --method pagemap --interval 20 --mem img -o run3.ls --json -- \
    "$bin/rwload" img --seed 13 --reads 1000 --writes 300 --truth run3.truth --pause-ms 100 --exit-from-thread > run3.json
grep -q '"exit_status":0' run3.json || fail "run3: exit status: $(cat run3.json)"
check run3

rm -f run4.ls run4i.ls
# 4. A failing command: exit 1, its status in the message and the JSON error, no loading set;
#    with --keep-on-failure it is recorded (exit 0, a warning, exit_status 3 in the report).
rc=0
"$bin/snap-record" --method pagemap --mem img -o run4.ls --json -- sh -c 'exit 3' > run4.json 2> run4.err || rc=$?
[ "$rc" = 1 ] || fail "run4: snap-record exited $rc for a failing command, expected 1"
[ ! -e run4.ls ] || fail "run4: a loading set was written for a failing command"
grep -q 'error: the command exited with status 3' run4.err || fail "run4: message lacks the status: $(cat run4.err)"
grep -q '"exit_status":3' run4.json || fail "run4: exit status 3 not in the JSON error: $(cat run4.json)"
ls .run4.ls.tmp.* > /dev/null 2>&1 && fail "run4: a temporary file was left behind"
rc=0
"$bin/snap-record" --method pagemap --mem img -o run4.ls --json -- sh -c 'kill -KILL $$' > run4k.json 2> run4k.err || rc=$?
[ "$rc" = 1 ] && [ ! -e run4.ls ] || fail "run4: killed command → exit $rc"
grep -q 'killed by SIGKILL' run4k.err || fail "run4: message lacks the signal: $(cat run4k.err)"
grep -q '"exit_signal":"SIGKILL"' run4k.json || fail "run4: exit_signal not in the JSON error: $(cat run4k.json)"
rc=0
"$bin/snap-record" --method pagemap --mem img -o run4.ls --json --keep-on-failure -- sh -c 'exit 3' > run4.json 2> run4.err || rc=$?
[ "$rc" = 0 ] || fail "run4: --keep-on-failure exited $rc"
[ -s run4.ls ] || fail "run4: --keep-on-failure wrote no loading set"
grep -q '"exit_status":3' run4.json || fail "run4: exit status 3 not reported: $(cat run4.json)"
grep -q 'warning' run4.err || fail "run4: no warning about the failing command"
# An interrupted recording of a started command: no loading set, the signal re-raised.
"$bin/snap-record" --method pagemap --mem img -o run4i.ls -- sleep 30 2> run4i.err &
rec=$!
sleep 0.5
kill -INT "$rec"
rc=0; wait "$rec" || rc=$?
[ "$rc" = 130 ] || fail "run4: interrupted recording exited $rc, expected 130 (SIGINT re-raised)"
[ ! -e run4i.ls ] || fail "run4: an interrupted recording left a loading set"
grep -q 'interrupted by SIGINT' run4i.err || fail "run4: interrupt message: $(cat run4i.err)"
echo "ok: failing, killed and interrupted commands leave no loading set; --keep-on-failure keeps it"

# 5. Signals reach the target (re-delivered), a group-stop is honoured, and -o - streams.
out=$(timeout 60 "$bin/snap-record" -q --mem img -o run5.ls -- \
      sh -c 'trap "echo usr1" USR1; kill -USR1 $$; (sleep 0.2; kill -CONT $$) & kill -STOP $$; wait; echo done')
[ "$out" = "$(printf 'usr1\ndone')" ] || fail "signals: target printed '$out'"
"$bin/snap-record" -q --mem img -o - -- "$bin/rwload" img --seed 14 --reads 10 --writes 5 --pause-ms 10 > run6.ls
"$bin/snap-stat" --list run6.ls > /dev/null || fail "-o - did not stream a valid loading set"
echo "ok: signals re-delivered, group-stop honoured, -o - streams"

# 7. A wrapper that runs the workload as a child (sh forks it, then waits): the child is
#    followed and scanned at its exit, so the result is the same as recording it directly.
"$bin/snap-record" --method pagemap --mem img -o run7.ls --json -- \
    sh -c "\"$bin/rwload\" img --seed 17 --reads 1000 --writes 300 --truth run7.truth; true" > run7.json
check run7

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-record --pid: attach to a running rwload; SIGINT stops cleanly (loading set written,
# target detached and still running); --duration stops by itself; and a target that exits
# while attached gets its final scan at its exit stop (its last touches are recorded).
set -eu
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
mkdir -p "$work" && cd "$work"
for t in snap-record rwload mkimage; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
fail() { echo "FAIL: $*"; exit 1; }
"$bin/mkimage" img --mib 32 --zero-pct 0 --seed 9
written_subset() {  # written_subset LOADSET TRUTH PHASES-REGEX: those truth W pages are recorded W
  "$bin/snap-stat" --list "$1" | awk '$2 ~ /W/ {print $1}' | sort > got.w
  awk -v ph="$3" '$2 == "W" && $3 ~ ph {print $1}' "$2" | sort > want.w
  [ -s want.w ] || fail "empty truth for $2"
  missing=$(comm -23 want.w got.w | wc -l)
  [ "$missing" = 0 ] || fail "$1: $missing written pages of phase $3 not recorded"
}

# 1. SIGINT: stop, write, detach; rwload goes on and exits 0 by itself.
"$bin/rwload" img --seed 31 --reads 500 --writes 200 --truth p1.truth --pause-ms 1500 &
target=$!
sleep 0.3
"$bin/snap-record" --pid "$target" --mem img -o p1.ls --json > p1.json &
rec=$!
sleep 0.5
kill -INT "$rec"
rc=0; wait "$rec" || rc=$?
[ "$rc" = 0 ] || fail "snap-record exited $rc after SIGINT"
[ -s p1.ls ] || fail "no loading set after SIGINT"
grep -q '"stop":"SIGINT"' p1.json || fail "stop reason: $(cat p1.json)"
kill -0 "$target" 2>/dev/null || fail "the target died when snap-record detached"
rc=0; wait "$target" || rc=$?
[ "$rc" = 0 ] || fail "the target exited $rc after being detached"
written_subset p1.ls p1.truth 1
echo "ok: --pid + SIGINT: recorded, detached, target exited 0"

# 2. --duration.
"$bin/rwload" img --seed 32 --reads 100 --writes 50 --pause-ms 1500 &
target=$!
sleep 0.2
"$bin/snap-record" --pid "$target" --duration 0.3 --mem img -o p2.ls --json > p2.json
grep -q '"stop":"duration"' p2.json || fail "--duration: $(cat p2.json)"
wait "$target" || fail "target failed after --duration detach"
echo "ok: --pid + --duration"

# 3. The target exits while attached: its final touches are caught at the exit stop.
"$bin/rwload" img --seed 33 --reads 500 --writes 200 --truth p3.truth --pause-ms 600 &
target=$!
sleep 0.2
"$bin/snap-record" --pid "$target" --interval 1000 --rss-trigger 0 --mem img -o p3.ls --json > p3.json
grep -q '"final_scan":"exit-stop"' p3.json || fail "no final scan at exit: $(cat p3.json)"
written_subset p3.ls p3.truth '[13]'
wait "$target" || true
echo "ok: --pid: final scan at the target's exit caught its last touches"

# 4. A pid that does not exist: a clear error, exit 1.
rc=0
"$bin/snap-record" --pid 999999999 --mem img -o p4.ls 2> p4.err || rc=$?
[ "$rc" = 1 ] || fail "nonexistent pid: exit $rc"
grep -q 'no process 999999999' p4.err || fail "nonexistent pid message: $(cat p4.err)"
echo "ok: nonexistent pid"

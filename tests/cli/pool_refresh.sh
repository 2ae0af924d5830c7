#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/pool-refresh.sh against a plain redis-server this script starts (tests/lib/redis.bash):
# ten function images sharing all but a few pages are refreshed into one pool; a second round
# uploads nothing and says "unchanged"; a changed image uploads only its new chunks and retires
# its previous manifest; after 9 of the 10 manifests are removed, a collection leaves exactly the
# chunks of the tenth (the set that placing the tenth alone into an empty namespace writes);
# two refreshes of one function are serialized by the lock, and --no-wait exits 75.
set -u
BIN=${1:-$SNAPKIT_BIN}
ROOT=${SNAPKIT_ROOT:?}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
source "$ROOT/tests/lib/redis.bash"
redis_available || { echo "skipped: redis-server or redis-cli is not installed"; exit 77; }
command -v flock > /dev/null || { echo "skipped: flock(1) is not installed"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# temporaries DIR: does a run's .refresh.* directory remain in DIR?
temporaries() { compgen -G "$1/.refresh.*" > /dev/null; }
export PATH="$BIN:$PATH"
REFRESH=$ROOT/scripts/pool-refresh.sh
N=10

redis_start_plain P || fail "cannot start a redis-server"
POOL=redis://127.0.0.1:$P/t
chunks() { redis_cli "$P" --scan --pattern "$1:c:*" | tr -d '\r' | sed "s/^$1:c://" | sort; }
registered() { snap-place --pool "$POOL" --list | grep -c .; }
# refresh FN LOG [ARGS...]: one run for function FN, its log in LOG; returns its exit status
refresh() {
  local f=$1 logf=$2; shift 2
  "$REFRESH" --function "$f" --pool "$POOL" --dir "state/$f" --image "img/$f.mem" --loadset "img/$f.ls" \
    --log "$logf" "$@"
}
uploaded() { sed -n 's/.*uploaded [0-9]* chunks (\([0-9]*\) bytes).*/\1/p' "$1" | tail -1; }

# --- ten images of 2048 pages: one base, each function with a few pages of its own -----------
# (mkfixture --variant: same pages touched in the same order, the loading set made for it)
mkdir -p img
for i in $(seq 1 $N); do
  "$BIN/mkfixture" "img/fn$i.mem" "img/fn$i.ls" 2048 7 --variant "$i" > /dev/null || fail "mkfixture"
done

# --- usage ------------------------------------------------------------------------------------
"$REFRESH" --help | grep -q -- '--function NAME' || fail "--help"
"$REFRESH" --pool "$POOL" --dir x --image img/fn1.mem --loadset img/fn1.ls 2> usage.err; rc=$?
[ "$rc" = 2 ] && grep -q -- '--function is required' usage.err || fail "no --function: exit $rc: $(cat usage.err)"

# --- first round: every function placed, shared chunks stored once ----------------------------
for i in $(seq 1 $N); do
  refresh "fn$i" "r1-fn$i.log" || fail "round 1 fn$i: $(cat "r1-fn$i.log")"
  grep -q 'done: refreshed' "r1-fn$i.log" || fail "round 1 fn$i: $(cat "r1-fn$i.log")"
  [ -f "state/fn$i/current" ] || fail "round 1 fn$i: no state/fn$i/current"
  temporaries "state/fn$i" && fail "round 1 fn$i: temporaries left: $(ls -a "state/fn$i")"
done
first=$(uploaded r1-fn1.log)
for i in $(seq 2 $N); do
  u=$(uploaded "r1-fn$i.log")
  [ -n "$u" ] && [ "$u" -gt 0 ] && [ "$u" -lt $((first / 4)) ] ||
    fail "fn$i uploaded $u bytes after fn1's $first: not only its new chunks"
done
[ "$(registered)" = $N ] || fail "after round 1: $(snap-place --pool "$POOL" --list)"
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z pool-refresh\[[0-9]+\] fn1: start' r1-fn1.log || fail "log format: $(head -2 r1-fn1.log)"
snap-stat --verify state/fn3/current > /dev/null 2> verify.err || fail "verify fn3's current: $(cat verify.err)"

# --- second round on unchanged images: nothing uploaded, no file of the state directory
# rewritten (inode and mtime of each), exit 0, exactly one log line: "unchanged" -------------
# files DIR: every file below DIR with its inode and mtime (ns), sorted
files() { find "$1" -type f -printf '%P %i %T@\n' | sort; }
before=$(chunks t | wc -l)
for i in $(seq 1 $N); do
  cp "state/fn$i/current" "prev$i.placed"
  files "state/fn$i" > "files$i.before"
  refresh "fn$i" "r2-fn$i.log" || fail "round 2 fn$i: exit $?: $(cat "r2-fn$i.log")"
  files "state/fn$i" > "files$i.after"
  [ "$(wc -l < "r2-fn$i.log")" = 1 ] && grep -q 'done: unchanged' "r2-fn$i.log" ||
    fail "round 2 fn$i: not one 'unchanged' line: $(cat "r2-fn$i.log")"
  grep -q ' 0 bytes uploaded' "r2-fn$i.log" || fail "round 2 fn$i uploaded: $(cat "r2-fn$i.log")"
  cmp -s "prev$i.placed" "state/fn$i/current" || fail "round 2 fn$i: current changed"
  diff "files$i.before" "files$i.after" > files.diff || fail "round 2 fn$i rewrote files in its state directory: $(cat files.diff)"
  grep -q '^current ' "files$i.after" || fail "round 2 fn$i: no current in $(cat "files$i.after")"
done
[ "$(chunks t | wc -l)" = "$before" ] || fail "round 2 changed the chunk count"
[ "$(registered)" = $N ] || fail "after round 2: $(snap-place --pool "$POOL" --list)"

# --- a changed image: only its new chunks go up; the previous manifest is retired -------------
old2=$(snap-place --pool "$POOL" --list | awk '$4 == "fn2" { print $1 }')
"$BIN/mkfixture" img/fn2.mem img/fn2.ls 2048 7 --variant 12 > /dev/null || fail "mkfixture"
refresh fn2 r3-fn2.log || fail "changed fn2: $(cat r3-fn2.log)"
u=$(uploaded r3-fn2.log)
[ "$u" -gt 0 ] && [ "$u" -lt $((first / 4)) ] || fail "changed fn2 uploaded $u bytes: $(cat r3-fn2.log)"
grep -q "retire: unregistered previous manifest $old2" r3-fn2.log || fail "fn2's old manifest not retired: $(cat r3-fn2.log)"
snap-place --pool "$POOL" --list | grep -q "^$old2 " && fail "$old2 still registered"
[ "$(registered)" = $N ] || fail "after the change: $(snap-place --pool "$POOL" --list)"
snap-place --pool "$POOL" --fetch fn2 -o fetched2.placed > /dev/null 2> fetch.err || fail "fetch fn2: $(cat fetch.err)"
cmp -s fetched2.placed state/fn2/current || fail "the pool's fn2 is not state/fn2/current"

# --- failures: exit 1, the step named, the current manifest untouched -------------------------
cp state/fn3/current fn3.before
"$REFRESH" --function fn3 --pool "$POOL" --dir state/fn3 --snapshot 'echo no vmm here >&2; exit 3' \
  --loadset img/fn3.ls 2> hookfail.log; rc=$?
[ "$rc" = 1 ] && grep -q 'snapshot: no vmm here' hookfail.log && grep -q 'failed at step snapshot' hookfail.log ||
  fail "a failing snapshot hook: exit $rc: $(cat hookfail.log)"
redis_start_plain DEAD || fail "cannot start a second redis-server"
redis_kill_node "$DEAD"
"$REFRESH" --function fn3 --pool "redis://127.0.0.1:$DEAD/t" --dir state/fn3 --image img/fn3.mem \
  --loadset img/fn3.ls 2> deadpool.log; rc=$?
[ "$rc" = 1 ] && grep -q "127.0.0.1:$DEAD" deadpool.log && grep -q 'failed at step list' deadpool.log ||
  fail "an unreachable pool: exit $rc: $(cat deadpool.log)"
cmp -s fn3.before state/fn3/current || fail "a failed run changed state/fn3/current"
temporaries state/fn3 && fail "a failed run left temporaries: $(ls -a state/fn3)"

# --- the lock: a held lock and --no-wait: exit 75 with a message; two runs serialized ---------
flock state/fn5/fn5.lock sleep 2 &
holder=$!
sleep 0.3
refresh fn5 nowait.log --no-wait; rc=$?
[ "$rc" = 75 ] && grep -q 'another refresh of fn5 is running.*exiting (--no-wait)' nowait.log ||
  fail "--no-wait under a held lock: exit $rc: $(cat nowait.log)"
refresh fn5 wait.log || fail "waiting run: $(cat wait.log)"
grep -q 'waiting up to' wait.log || fail "the waiting run did not say it waits: $(cat wait.log)"
wait "$holder"
# Two real runs at once; the snapshot hook records when each one is inside the critical section.
hook='echo "start $(date +%s%N)" >> '"$W"'/spans; cp '"$W"'/img/fn6.mem "$SNAPKIT_IMAGE"; sleep 1; echo "end $(date +%s%N)" >> '"$W"'/spans'
rm -f spans
for k in a b; do
  "$REFRESH" --function fn6 --pool "$POOL" --dir state/fn6 --snapshot "$hook" --loadset img/fn6.ls --log "conc-$k.log" &
done
wait -n || fail "a concurrent run failed: $(cat conc-a.log conc-b.log)"
wait -n || fail "a concurrent run failed: $(cat conc-a.log conc-b.log)"
[ "$(awk '{ print $1 }' spans | tr '\n' ' ')" = "start end start end " ] || fail "runs overlapped: $(cat spans)"
cat conc-a.log conc-b.log | grep -q 'waiting up to' || fail "neither run waited: $(cat conc-a.log conc-b.log)"
temporaries state/fn6 && fail "temporaries left in state/fn6"

# A pool spelled with two seeds (one server twice): snap-place --tiers keeps the URL whole.
"$REFRESH" --function fn9 --pool "redis://127.0.0.1:$P,localhost:$P/t" --dir state/fn9 --image img/fn9.mem \
  --loadset img/fn9.ls 2> seeds.log || fail "two seeds: $(cat seeds.log)"
[ "$(uploaded seeds.log)" = 0 ] && grep -q 'done: page data unchanged' seeds.log || fail "two seeds: $(cat seeds.log)"

# --- remove 9 of 10, collect: exactly the tenth's chunks remain --------------------------------
# The expected set, independently: the tenth alone placed into an empty namespace.
snap-split --mem img/fn10.mem -o solo.split img/fn10.ls 2> solo.err || fail "solo split: $(cat solo.err)"
S=redis://127.0.0.1:$P/solo
snap-place solo.split -o solo.placed --tier ro=$S --tier rw=$S --tier cold=$S > /dev/null 2> solo.err || fail "solo place: $(cat solo.err)"
chunks solo > expected.txt
[ -s expected.txt ] || fail "the solo placement wrote no chunks"
for i in $(seq 1 9); do
  snap-place --pool "$POOL" --remove "fn$i" > /dev/null 2> rm.err || fail "remove fn$i: $(cat rm.err)"
done
[ "$(registered)" = 1 ] || fail "after removing 9: $(snap-place --pool "$POOL" --list)"
snap-place --pool "$POOL" --collect --json > collect.json 2> collect.err || fail "collect: $(cat collect.err)"
chunks t > remaining.txt
diff expected.txt remaining.txt > chunks.diff || fail "after collection, not exactly fn10's chunks: $(head chunks.diff)"
snap-stat --verify state/fn10/current > /dev/null 2> verify.err || fail "verify fn10 after collection: $(cat verify.err)"
echo "ok: ten refreshes, a no-op second round, a changed image, the lock, and collection down to $(wc -l < remaining.txt) chunks of fn10"

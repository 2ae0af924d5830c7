#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The pool tier's Redis transport against live servers this script starts (127.0.0.1 only,
# tests/lib/redis.bash) and stops, also on failure: a plain server and a 3-master cluster.
# pooltool writes thousands of binary keys over every slot and reads each value back; slots
# move under a client that holds the old map (MOVED) and half-way (ASK); the eviction check
# passes on noeviction and names the node that is not; a paused node and a killed node end a
# read with an error naming that node, within the io timeout.
set -u
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
source "${SNAPKIT_ROOT:?}/tests/lib/redis.bash"
redis_available || { echo "skipped: redis-server or redis-cli is not installed"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
pt() { timeout 120 "$BIN/pooltool" "$@"; }
check() {  # check FILE PYTHON-EXPRESSION-ON-d
  python3 -c "import json, sys; d = json.load(open(sys.argv[1])); assert $2, d" "$1" || fail "$1: $(cat "$1")"
}
# expect_error NAME NEEDLE... : the last pooltool run (stderr in NAME.err) exited 1 and said all
expect_error() {
  local name=$1 rc=$2; shift 2
  [ "$rc" = 1 ] || fail "$name: exit $rc, wanted 1: $(cat "$name.err")"
  for needle in "$@"; do grep -qF -- "$needle" "$name.err" || fail "$name: no '$needle' in: $(cat "$name.err")"; done
}

# --- A plain server ------------------------------------------------------------------------
redis_start_plain P || fail "cannot start a plain redis-server"
U=redis://127.0.0.1:$P/t
pt cycle --url "$U" --keys 2000 > plain.json 2> plain.err || fail "plain cycle: $(cat plain.err)"
check plain.json 'd["cluster"] is False and d["masters"] == 1 and d["keys"] == 2000 and d["redirects"] == 0'
check plain.json 'd["round_trips"] < 100'  # pipelined: not one round trip per key
pt fill --url "$U" --keys 1000 > /dev/null 2> fill.err || fail "plain fill: $(cat fill.err)"
pt verify --url "$U" --keys 1000 > verify.json 2> verify.err || fail "plain verify: $(cat verify.err)"
pt check-eviction --url "$U" > /dev/null 2> evict.err || fail "plain noeviction: $(cat evict.err)"
pt bench --url "$U" --iterations 200 > bench.json 2> bench.err || fail "bench: $(cat bench.err)"
check bench.json 'all(d[f"{m}_{s}_{u}"] > 0 for m in ("get", "pipelined") for s in ("4k", "64k") for u in ("p50_us", "gbps"))'
# A pool part's reads (PartReader): scattered single-chunk reads fetch just what they need, no
# read-ahead; a scan reads ahead once it is seen to be one, and finds most chunks read ahead.
pt readahead --url "$U" > ra.json 2> ra.err || fail "readahead: $(cat ra.err)"
check ra.json 'd["scattered"]["prefetched_chunks"] == 0 and d["scattered"]["demand_fetches"] == 8'
check ra.json 'd["scan"]["prefetched_chunks"] > 0 and d["scan"]["prefetch_hits"] > 0 and d["scan"]["demand_fetches"] < d["chunks"]'

redis_cli "$P" config set maxmemory-policy allkeys-lru > /dev/null
pt check-eviction --url "$U" > /dev/null 2> lru.err
expect_error lru $? "127.0.0.1:$P" "allkeys-lru" "noeviction"
redis_cli "$P" config set maxmemory-policy noeviction > /dev/null

redis_start_plain Q --rename-command CONFIG '""' || fail "cannot start a server without CONFIG"
pt check-eviction --url "redis://127.0.0.1:$Q" > /dev/null 2> noconfig.err
expect_error noconfig $? "127.0.0.1:$Q" "CONFIG GET maxmemory-policy refused"

# Nobody there: refused at once, the seed named.
redis_kill_node "$Q"
start=$(date +%s%N)
pt verify --url "redis://127.0.0.1:$Q" --keys 1 > /dev/null 2> refused.err
expect_error refused $? "127.0.0.1:$Q" "cannot connect"
(( ($(date +%s%N) - start) / 1000000 < 3000 )) || fail "a refused connection took over 3 s"

# --- A cluster of three masters ------------------------------------------------------------
redis_start_cluster C 3 || fail "cannot start a redis cluster"
read -r C1 C2 C3 <<< "$C"
U="redis://127.0.0.1:$C1,127.0.0.1:$C2/t"
for k in foo bar 123456789 '{user1000}.following' '{user1000}.followers' 'foo{}{bar}' 'foo{{bar}}zap' 'a{b}{c}'; do
  [ "$("$BIN/pooltool" slot "$k")" = "$(redis_cli "$C1" cluster keyslot "$k" | tr -d '\r')" ] ||
    fail "slot of '$k': ours $("$BIN/pooltool" slot "$k"), the server's $(redis_cli "$C1" cluster keyslot "$k")"
done
pt cycle --url "$U" --keys 3000 > cycle.json 2> cycle.err || fail "cluster cycle: $(cat cycle.err)"
check cycle.json 'd["cluster"] is True and d["masters"] == 3 and d["nodes_used"] == 3 and d["redirects"] == 0'
check cycle.json 'd["wait_replicas"] == 0'
# A restore's reader connects to every master before the first fault (two seeds given, three
# masters: the third is found in the slot map).
pt connect --url "$U" > connect.json 2> connect.err || fail "connect: $(cat connect.err)"
check connect.json 'd["connected"] == 3 and d["masters"] == 3'
pt fill --url "$U" --keys 3000 > /dev/null 2> fill.err || fail "cluster fill: $(cat fill.err)"
pt check-eviction --url "$U" > /dev/null 2> evict.err || fail "cluster noeviction: $(cat evict.err)"
redis_cli "$C3" config set maxmemory-policy allkeys-lru > /dev/null
pt check-eviction --url "$U" > /dev/null 2> lru.err
expect_error lru $? "127.0.0.1:$C3" "allkeys-lru"
redis_cli "$C3" config set maxmemory-policy noeviction > /dev/null

# MOVED: a client that loaded the slot map before 200 slots moved still reads every key.
rm -f moved moved.ready
pt verify --url "$U" --keys 3000 --wait-file "$W/moved" --pre-verify > moved.json 2> moved.err &
vpid=$!
for _ in $(seq 600); do [ -e moved.ready ] && break; sleep 0.1; done
[ -e moved.ready ] || fail "verify did not get ready: $(cat moved.err)"
timeout 120 redis-cli --cluster reshard "127.0.0.1:$C1" --cluster-from "$(redis_node_id "$C1")" \
  --cluster-to "$(redis_node_id "$C2")" --cluster-slots 200 --cluster-yes > reshard.log 2>&1 ||
  fail "reshard: $(tail -5 reshard.log)"
redis_wait_cluster_ok $C || fail "cluster not ok after the reshard"
touch moved
wait $vpid || fail "verify across a reshard: $(cat moved.err)"
check moved.json 'd["keys"] == 3000 and d["redirects"] > 0'

# ASK: one slot half-way from its owner to another master. Old keys answer from either side
# (ASK for the moved ones), new keys land on the importing node; then the slot is handed over.
slot=$("$BIN/pooltool" slot "{ask}")
from=$(redis_slot_owner "$slot" $C) || fail "no owner for slot $slot"
for p in $C; do [ "$p" != "$from" ] && to=$p && break; done
pt fill --url "$U" --tag ask --seed 5 --keys 200 > /dev/null 2> fill.err || fail "fill {ask}: $(cat fill.err)"
rm -f ask ask.ready
pt verify --url "$U" --tag ask --seed 5 --keys 200 --wait-file "$W/ask" --pre-verify > ask.json 2> ask.err &
vpid=$!
for _ in $(seq 600); do [ -e ask.ready ] && break; sleep 0.1; done
redis_slot_migrate_begin "$from" "$to" "$slot" || fail "migrate begin"
redis_slot_migrate_keys "$from" "$to" "$slot" 100 || fail "migrate 100 keys"
touch ask
wait $vpid || fail "verify in a half-migrated slot: $(cat ask.err)"
check ask.json 'd["redirects"] >= 100'
pt fill --url "$U" --tag ask --seed 6 --keys 50 > ask6.json 2> fill.err || fail "fill into a half-migrated slot: $(cat fill.err)"
check ask6.json 'd["redirects"] >= 50'
[ "$(redis_cli "$to" cluster countkeysinslot "$slot" | tr -d '\r')" = 150 ] || fail "the new keys are not on the importing node"
pt verify --url "$U" --tag ask --seed 6 --keys 50 > /dev/null 2> ask.err || fail "verify new keys: $(cat ask.err)"
redis_slot_migrate_keys "$from" "$to" "$slot" 1000 || fail "migrate the rest"
redis_slot_migrate_end "$from" "$to" "$slot" $C || fail "migrate end"
redis_wait_cluster_ok $C || fail "cluster not ok after the migration"
for s in 5 6; do
  n=$([ $s = 5 ] && echo 200 || echo 50)
  pt verify --url "$U" --tag ask --seed $s --keys $n > /dev/null 2> ask.err || fail "verify after the migration: $(cat ask.err)"
done
pt verify --url "$U" --keys 3000 > /dev/null 2> verify.err || fail "verify after all moves: $(cat verify.err)"

# A paused node (connections accepted, never answered): an error naming it within the io
# timeout; then it comes back and everything is there.
redis_pause_node "$C3"
start=$(date +%s%N)
pt verify --url "$U" --keys 3000 --io-timeout-ms 1000 > /dev/null 2> paused.err
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
redis_resume_node "$C3"
expect_error paused $rc "127.0.0.1:$C3" "io timeout"
((ms < 5000)) || fail "a paused node took $ms ms to report (io timeout 1000 ms)"
redis_wait_cluster_ok $C || fail "cluster not ok after the pause"
pt verify --url "$U" --keys 3000 > /dev/null 2> verify.err || fail "verify after the pause: $(cat verify.err)"

# A node killed under a connected client, then a fresh client: both name the node.
rm -f kill kill.ready
pt verify --url "$U" --keys 3000 --wait-file "$W/kill" --pre-verify > /dev/null 2> killed.err &
vpid=$!
for _ in $(seq 600); do [ -e kill.ready ] && break; sleep 0.1; done
redis_kill_node "$C3"
touch kill
wait $vpid
expect_error killed $? "127.0.0.1:$C3"
start=$(date +%s%N)
pt verify --url "$U" --keys 3000 > /dev/null 2> killed2.err
expect_error killed2 $? "127.0.0.1:$C3" "cannot connect"
(( ($(date +%s%N) - start) / 1000000 < 5000 )) || fail "a dead node took over 5 s to report"
# Connecting ahead is best effort: the dead master is left to the command that needs it.
pt connect --url "$U" > connect2.json 2> connect2.err || fail "connect with a node down: $(cat connect2.err)"
check connect2.json 'd["connected"] == 2 and d["masters"] == 3'

redis_stop_all
echo ok

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The pool tier end to end on real redis-servers (a 3-master cluster and one plain server):
# place into the pool (a second placement uploads nothing, same bytes), restore from it in
# every front-end with the image absent (--materialize, --exec with a placeholder, --serve),
# and from the same data at another address (--pool URL; another namespace refused),
# then the faults: a deleted chunk, a corrupted value, a node killed mid-restore, an evicting
# server — each stops with an error naming the chunk or the node, never a wrong page; and
# collection: only unnamed chunks go, also while placements run at the same time.
set -u
BIN=${1:-$SNAPKIT_BIN}
ROOT=${SNAPKIT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$ROOT/tests/lib/redis.bash"
redis_available || { echo "skipped: redis-server is not installed (scripts/deps.txt)"; exit 77; }
# RO maps in place from a tmpfs "dax" tier (the layout file must be on tmpfs for tiered).
DAX=$(mktemp -d /dev/shm/snapkit-pool-test.XXXXXX) && chmod 700 "$DAX"
trap 'rm -rf "$DAX"' EXIT
redis_start_cluster PORTS 3 || fail "cannot start a 3-master cluster"
read -r P1 P2 P3 <<< "$PORTS"
U="redis://127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3/t"
redis_start_plain PP || fail "cannot start a plain server"
UP="redis://127.0.0.1:$PP/plain"

"$BIN/mkfixture" img ls 8192 7 > /dev/null || exit 1
"$BIN/snap-split" --mem img -o s.split ls || exit 1
cp img keep.img

# 1. Placement: COLD on the cluster; a second placement of the same split uploads nothing and
# writes the same bytes; every class but RW in the pool; everything on one plain server.
"$BIN/snap-place" s.split -o c.placed --tier rw=dram --tier ro=dax:"$DAX" --tier cold="$U" --name fixture --json > c.json ||
  fail "place cold into the cluster"
"$BIN/snap-place" s.split -o c2.placed --tier rw=dram --tier ro=dax:"$DAX" --tier cold="$U" --json > c2.json || fail "place again"
cmp c.placed c2.placed || fail "the same placement gave different manifests"
"$BIN/snap-place" s.split -o a.placed --tier rw=dram --tier ro="$U" --tier cold="$U" --json > a.json || fail "place ro+cold"
"$BIN/snap-place" s.split -o pl.placed --tier rw="$UP" --tier ro="$UP" --tier cold="$UP" --chunk-size 4K > /dev/null ||
  fail "place into a plain server"
python3 - c.json c2.json a.json <<'PY' || fail "placement reports: $(cat c.json c2.json)"
import json, sys
c, c2, a = (json.load(open(f)) for f in sys.argv[1:4])
cold = [p for p in c["parts"] if p["class"] == "cold"][0]["pool"]
assert cold["chunks"] > 0 and cold["uploaded_chunks"] == cold["distinct_chunks"] > 0 and cold["uploaded_bytes"] > 0, cold
cold2 = [p for p in c2["parts"] if p["class"] == "cold"][0]["pool"]
assert cold2["uploaded_chunks"] == 0 and cold2["uploaded_bytes"] == 0 and cold2["present_chunks"] == cold["distinct_chunks"], cold2
ro = [p for p in a["parts"] if p["class"] == "ro"][0]["pool"]
assert ro["uploaded_chunks"] > 0, ro
assert [p for p in a["parts"] if p["class"] == "cold"][0]["pool"]["uploaded_bytes"] == 0   # shared with c.placed
PY
# Chunks spread over all three masters; no key of ours uses a hash tag.
for p in $P1 $P2 $P3; do
  n=$(redis_cli "$p" --scan --pattern 't:c:*' | wc -l)
  [ "$n" -gt 0 ] || fail "node $p holds no chunk"
done
"$BIN/snap-stat" --verify c.placed > v.txt || fail "snap-stat --verify of the pool copy: $(cat v.txt)"
"$BIN/snap-stat" --json c.placed > st.json && python3 -c "
import json; j=json.load(open('st.json')); c=[p for p in j['parts'] if p['class']=='cold'][0]
assert c['compression']=='chunks' and c['pool']['chunks']>0 and c['tier'].startswith('redis://'), c" || fail "snap-stat: $(cat st.json)"

# 2. Restores with the image absent.
rm img
for placed in c.placed a.placed pl.placed; do
  "$BIN/snap-restore" $placed --materialize m.img --json > m.json || fail "$placed: materialize: $(cat m.json)"
  cmp m.img keep.img || fail "$placed: the materialized image differs"
  rm m.img
  for s in tiered reap; do
    "$BIN/snap-restore" $placed --strategy $s --image img --json -o $s.json --exec -- "$BIN/maptest" img --expect keep.img --writes 300 > $s.out 2> $s.err ||
      fail "$placed $s --exec: $(cat $s.err $s.out)"
    [ ! -e img ] || fail "$placed $s: the placeholder was left behind"
    python3 -c "
import json, sys; j = json.load(open('$s.json'))
assert j['image_placeholder'] and j['vmm']['exit_status'] == 0, j['vmm']
assert j['pool'] and (j['pool']['demand_fetches'] > 0 or j['pool']['before_resume_bytes'] > 0), j['pool']
assert j['fault_spin_us'] == 100, j['fault_spin_us']  # parts in a pool: poll before sleeping" ||
      fail "$placed $s: report $(head -c 2000 $s.json)"
    grep -q '"wrong_pages": 0' $s.out || fail "$placed $s: $(cat $s.out)"
  done
  out=$("$BIN/snap-restore" $placed --strategy faasnap --image img --exec -- "$BIN/maptest" img 2>&1) && fail "faasnap without the image ran"
  echo "$out" | grep -q "maps the image" || fail "faasnap without the image: $out"
done
serve() {  # serve NAME PLACED ARGS...
  local name=$1 placed=$2; shift 2
  timeout 120 "$BIN/snap-restore" $placed --serve "$W/$name.sock" --json --accept-timeout 30 "$@" > $name.json 2> $name.err &
  local spid=$!
  timeout 120 "$BIN/fcclient" --socket "$W/$name.sock" --image keep.img --regions-mib 24,8 --threads 2 --json > $name.client 2> $name.client.err
  local crc=$?
  wait $spid
  local src=$?
  [ $crc = 0 ] && [ $src = 0 ] || fail "$name: client exit $crc, server exit $src: $(cat $name.err $name.client.err)"
  python3 -c "
import json; c = json.load(open('$name.client')); assert c['mismatched_pages'] == 0, c
j = json.load(open('$name.json')); assert j['pool']['fetched_bytes'] > 0, j['pool']
assert j['fault_spin_us'] == int('${SPIN:-100}'), j['fault_spin_us']
# Idle cores poll while the server polls (a CPU latency request, root's), and only then.
ip = j['stats']['idle_poll']
want = '${IDLE:-on}' if __import__('os').access('/dev/cpu_dma_latency', __import__('os').W_OK) or '${IDLE:-on}' == 'off' else 'unavailable'
assert ip == want, (ip, want)
assert (j['stats']['idle_poll_windows'] > 0) == (ip == 'on'), j['stats']" || fail "$name: $(cat $name.client) $(head -c 3000 $name.json)"
}
# The CPU latency every idle core must meet now, µs ("" where the device is not readable).
cpu_latency() {
  [ -r /dev/cpu_dma_latency ] && python3 -c "
import struct; print(struct.unpack('i', open('/dev/cpu_dma_latency', 'rb').read(4))[0])"
}
LIMIT0=$(cpu_latency)
serve sc c.placed --strategy tiered
SPIN=0 IDLE=off serve s0 c.placed --strategy tiered --fault-spin 0
IDLE=off serve sn c.placed --strategy tiered --no-idle-poll
if [ -n "$LIMIT0" ] && [ "$LIMIT0" != 0 ]; then  # the requests are gone with the restores
  [ "$(cpu_latency)" = "$LIMIT0" ] || fail "a CPU latency request outlived its restore: $(cpu_latency) us, $LIMIT0 before"
fi
serve sa a.placed --strategy tiered
serve sr a.placed --strategy reap

# 2b. The same pool at other addresses (snap-restore --pool): the plain server's data is
# saved and loaded by a second server on another port, the first is stopped. The manifest's
# URL no longer answers; --pool with the second's address restores in every front-end, with
# the right bytes, and the report names the URL used; another namespace is refused.
redis_cli "$PP" SAVE > /dev/null || fail "SAVE on the plain server"
mkdir -p rdb && cp "$(redis_cli "$PP" CONFIG GET dir | sed -n 2p)/dump.rdb" rdb/ || fail "copy the plain server's dump"
redis_start_plain PQ --dir "$W/rdb" || fail "cannot start the second plain server"
UQ="redis://127.0.0.1:$PQ/plain"
redis_kill_node "$PP"
"$BIN/snap-restore" pl.placed --materialize m.img 2> gone.err && fail "restored from a server that was stopped"
grep -q "127.0.0.1:$PP" gone.err || fail "the stopped server is not named: $(cat gone.err)"
"$BIN/snap-restore" pl.placed --pool "$UQ" --materialize m.img --json > pm.json || fail "--pool --materialize: $(cat pm.json)"
cmp m.img keep.img || fail "--pool --materialize: the image differs"
rm m.img
python3 -c "
import json; j = json.load(open('pm.json'))
assert j['pool_url'] == '$UQ' and j['placed_pool_url'] == '$UP', j" || fail "--pool --materialize: report $(cat pm.json)"
"$BIN/snap-restore" pl.placed --pool "$UQ" --strategy tiered --image img --json -o pe.json --exec -- "$BIN/maptest" img --expect keep.img --writes 300 > pe.out 2> pe.err ||
  fail "--pool --exec: $(cat pe.err pe.out)"
grep -q '"wrong_pages": 0' pe.out || fail "--pool --exec: $(cat pe.out)"
python3 -c "
import json; j = json.load(open('pe.json'))
assert j['pool_url'] == '$UQ' and j['pool']['fetched_bytes'] > 0, j" || fail "--pool --exec: report $(head -c 2000 pe.json)"
serve sq pl.placed --strategy tiered --pool "$UQ"
python3 -c "
import json; j = json.load(open('sq.json')); assert j['pool_url'] == '$UQ', j" || fail "--pool --serve: report $(head -c 2000 sq.json)"
"$BIN/snap-restore" pl.placed --pool "redis://127.0.0.1:$PQ/other" --materialize m.img 2> ns.err
code=$?
[ $code = 2 ] || fail "--pool with another namespace: exit $code ($(cat ns.err))"
[ "$(wc -l < ns.err)" -le 2 ] && grep -q "namespace 'other', but the pool parts of pl.placed are in namespace 'plain'" ns.err ||
  fail "--pool with another namespace: $(cat ns.err)"
[ ! -e m.img ] || fail "--pool with another namespace wrote an image"
mkdir -p nopool && "$BIN/snap-place" -q s.split -o nopool/f.placed > /dev/null || fail "place on the default tiers"
"$BIN/snap-restore" nopool/f.placed --pool "$UQ" --materialize m.img 2> np.err
code=$?
[ $code = 2 ] && grep -q "has no part in a pool" np.err || fail "--pool without pool parts: exit $code ($(cat np.err))"
# snap-stat reaches the same pool at the other address too (--pool-url, for --verify and --pool):
# without it the stopped server is named; with it every chunk is read and checked from there.
"$BIN/snap-stat" --verify pl.placed > sv.out 2> sv.err && fail "snap-stat --verify read a server that was stopped"
grep -q "127.0.0.1:$PP" sv.err || fail "snap-stat --verify: the stopped server is not named: $(cat sv.err)"
"$BIN/snap-stat" --verify --pool --pool-url "$UQ" --json pl.placed > sq.stat 2> sq.err || fail "snap-stat --pool-url: $(cat sq.err)"
python3 -c "
import json; j = json.load(open('sq.stat'))
assert j['verified'] is True and j['pool']['pool_url'] == '$UQ', j
assert all(p['missing_chunks'] == 0 and p['present_chunks'] == p['distinct_chunks'] > 0 for p in j['pool']['parts']), j" ||
  fail "snap-stat --pool-url: report $(head -c 2000 sq.stat)"
"$BIN/snap-stat" --verify --pool-url "redis://127.0.0.1:$PQ/other" pl.placed 2> sns.err
code=$?
[ $code = 2 ] && grep -q "namespace 'other'" sns.err || fail "snap-stat --pool-url, another namespace: exit $code ($(cat sns.err))"
"$BIN/snap-stat" --pool-url "$UQ" pl.placed 2> snv.err
code=$?
[ $code = 2 ] && grep -q "goes with --verify or --pool" snv.err || fail "snap-stat --pool-url alone: exit $code ($(cat snv.err))"
"$BIN/snap-stat" --verify --pool-url "$UQ" s.split 2> sns2.err
code=$?
[ $code = 2 ] && grep -q "goes with a placed artifact" sns2.err || fail "snap-stat --pool-url on a split: exit $code ($(cat sns2.err))"

# 2c. A placement whose tiers are all in the pool records no unused default tier (dram,
# file:<output dir>): into two directories, the same manifest bytes and digest (issue 9).
# A namespace of its own: the faults and collections below count the chunks of t.
U2="redis://127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3/t2"
mkdir -p d1 d2
for d in d1 d2; do
  "$BIN/snap-place" s.split -o $d/x.placed --tier rw="$U2" --tier ro="$U2" --tier cold="$U2" --json > $d/x.json || fail "place into $d"
done
cmp d1/x.placed d2/x.placed || fail "the same pool placement into two directories gave different manifests"
python3 - d1/x.json d2/x.json <<'PY' || fail "pool placements into two directories: $(cat d1/x.json d2/x.json)"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a["digest"] == b["digest"], (a["digest"], b["digest"])
PY
"$BIN/snap-stat" --json d1/x.placed > dx.json && python3 -c "
import json; j = json.load(open('dx.json'))
assert [t['tier_kind'] for t in j['tiers']] == ['pool'], j['tiers']" || fail "tiers of a pool-only placement: $(cat dx.json)"

# 3. Faults. A missing chunk: the VMM is stopped, the error names the chunk and its node.
key=$(redis_cli "$P1" --scan --pattern 't:c:*' | head -1)
[ -n "$key" ] || fail "no chunk on node $P1"
redis_cli "$P1" --no-raw DUMP "$key" > /dev/null
val=$(mktemp "$W/val.XXXXXX")
redis_cli "$P1" --raw GET "$key" | head -c -1 > "$val"   # the value, without redis-cli's newline
redis_cli "$P1" DEL "$key" > /dev/null
"$BIN/snap-restore" a.placed --strategy tiered --image img --exec -- "$BIN/maptest" img --expect keep.img > miss.out 2> miss.err
code=$?
[ $code = 3 ] || fail "a missing chunk: exit $code ($(cat miss.err))"
grep -q "chunk ${key#t:c:} is missing from the pool (node 127.0.0.1:$P1)" miss.err || fail "a missing chunk: $(cat miss.err)"
grep -q '"wrong_pages"' miss.out && fail "the VMM ran on with a missing chunk: $(cat miss.out)"
"$BIN/snap-stat" --verify a.placed > /dev/null 2> sv.err && fail "snap-stat --verify passed with a chunk missing"
grep -q "${key#t:c:}" sv.err || fail "snap-stat --verify: $(cat sv.err)"
"$BIN/snap-restore" a.placed --materialize m.img 2> mm.err && fail "materialize with a chunk missing succeeded"
[ ! -e m.img ] || fail "a half-written image was left behind"
# A value that is not its chunk (one byte flipped): refused, named.
python3 - "$val" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 0xff; open(sys.argv[1], "wb").write(b)
PY
redis_cli "$P1" -x SET "$key" < "$val" > /dev/null
"$BIN/snap-restore" a.placed --strategy reap --image img --exec -- "$BIN/maptest" img --expect keep.img > bad.out 2> bad.err
code=$?
[ $code = 3 ] || fail "a corrupt chunk: exit $code ($(cat bad.err))"
grep -q "chunk ${key#t:c:} (node 127.0.0.1:$P1): \(content hash mismatch\|zstd\)" bad.err || fail "a corrupt chunk: $(cat bad.err)"
# Restore the chunk from a fresh placement (SET NX does not overwrite: delete it first).
redis_cli "$P1" DEL "$key" > /dev/null
"$BIN/snap-place" s.split -o a.placed --tier rw=dram --tier ro="$U" --tier cold="$U" > /dev/null || fail "re-place"
"$BIN/snap-stat" --verify a.placed > /dev/null || fail "the re-placed chunk does not verify"

# An evicting server is refused before anything is uploaded.
redis_cli "$P2" CONFIG SET maxmemory-policy allkeys-lru > /dev/null
"$BIN/snap-place" s.split -o e.placed --tier cold="$U" 2> ev.err && fail "placed into an evicting pool"
grep -q "127.0.0.1:$P2" ev.err && grep -q "allkeys-lru" ev.err || fail "evicting pool: $(cat ev.err)"
[ ! -e e.placed ] || fail "a manifest was written for a refused placement"
redis_cli "$P2" CONFIG SET maxmemory-policy noeviction > /dev/null

# 4. Collection. Remove one of two manifests: only chunks nobody else names go. Placements
# racing collections lose nothing.
"$BIN/snap-split" --mem keep.img -o b.split "$ROOT/testdata/pagemap.ls" 2> /dev/null ||
  { "$BIN/mkfixture" img2 ls2 8192 7 --zero-pct 30 > /dev/null && "$BIN/snap-split" --mem img2 -o b.split ls2; } || fail "second split"
"$BIN/mkfixture" img3 ls3 8192 11 > /dev/null && "$BIN/snap-split" --mem img3 -o o.split ls3 || fail "other split"
"$BIN/snap-place" o.split -o o.placed --tier rw="$U" --tier ro="$U" --tier cold="$U" --name other > /dev/null || fail "place other"
before=$(for p in $P1 $P2 $P3; do redis_cli $p --scan --pattern 't:c:*'; done | sort)
"$BIN/snap-place" --pool "$U" --list --json > list.json || fail "--list"
python3 -c "
import json; j = json.load(open('list.json')); names = sum((m['names'] for m in j['manifests']), [])
assert 'fixture' in names and 'other' in names, j" || fail "--list: $(cat list.json)"
for d in $(python3 -c "
import json; [print(m['digest']) for m in json.load(open('list.json'))['manifests'] if 'other' not in m['names']]"); do
  "$BIN/snap-place" --pool "$U" --remove "$d" > /dev/null || fail "--remove $d"
done
"$BIN/snap-place" --pool "$U" --collect --json > gc.json || fail "--collect"
after=$(for p in $P1 $P2 $P3; do redis_cli $p --scan --pattern 't:c:*'; done | sort)
[ "$(echo "$after" | wc -l)" -lt "$(echo "$before" | wc -l)" ] || fail "collection deleted nothing"
"$BIN/snap-stat" --verify o.placed > /dev/null || fail "collection took a chunk of the manifest left"
# Exactly the chunks of the manifest left (other) remain: the pool holds as many chunks as
# other names (its registered list is of distinct ids), and every one of those is there.
"$BIN/snap-place" --pool "$U" --list --json > list2.json || fail "--list after collection"
python3 - list2.json "$(echo "$after" | grep -c .)" <<'PY' || fail "after collection: $(cat list2.json), $(echo "$after" | wc -l) chunks"
import json, sys
j = json.load(open(sys.argv[1]))
assert [m["names"] for m in j["manifests"]] == [["other"]], j
assert j["manifests"][0]["chunks"] == int(sys.argv[2]), (j, sys.argv[2])
PY
"$BIN/snap-restore" o.placed --materialize o.img > /dev/null && cmp o.img img3 || fail "other does not restore after collection"
"$BIN/snap-stat" --pool --json o.placed > op.json || fail "snap-stat --pool: $(cat op.json)"
python3 -c "
import json; j = json.load(open('op.json'))['pool']
assert j['registered'] and j['registered_manifests'] == 1, j
for p in j['parts']: assert p['missing_chunks'] == 0 and p['shared_chunks'] == 0 and p['unique_bytes'] > 0, p" ||
  fail "snap-stat --pool: $(cat op.json)"
# Two names on one manifest: removing one by name keeps it registered under the other.
"$BIN/snap-place" o.split -o o2.placed --tier rw="$U" --tier ro="$U" --tier cold="$U" --name other2 > /dev/null || fail "second name"
cmp o.placed o2.placed || fail "the same placement under a second name gave other bytes"
"$BIN/snap-place" --pool "$U" --remove other --json > rmn.json || fail "--remove other"
python3 -c "
import json; j = json.load(open('rmn.json')); assert not j['unregistered'] and j['kept_by'] == ['other2'], j" || fail "--remove by name: $(cat rmn.json)"
"$BIN/snap-place" --pool "$U" --collect > /dev/null || fail "collect after removing one name"
"$BIN/snap-stat" --verify o.placed > /dev/null || fail "removing one of two names lost the manifest's chunks"
"$BIN/snap-place" s.split -o n.placed --tier cold="$U" --name 0123456789abcdef 2> hexname.err && fail "a digest-like name was taken"
grep -q "a name is" hexname.err || fail "a digest-like name: $(cat hexname.err)"
# Racing: collections in a loop while placements run; every placement restores after.
( for i in $(seq 60); do "$BIN/snap-place" --pool "$U" --collect > /dev/null 2>&1; done ) &
gcpid=$!
for i in 1 2 3 4 5 6; do
  "$BIN/snap-place" s.split -o r$i.placed --tier rw=dram --tier ro="$U" --tier cold="$U" --chunk-size $((4 * i))K > /dev/null ||
    fail "placement $i during collections"
done
wait $gcpid
"$BIN/snap-place" --pool "$U" --collect > /dev/null || fail "final collect"
for i in 1 2 3 4 5 6; do "$BIN/snap-stat" --verify r$i.placed > /dev/null || fail "placement $i lost a chunk to a collection"; done

# 5. A node killed mid-restore: the VMM is stopped with an error naming the node, no hang.
"$BIN/snap-restore" r1.placed --strategy tiered --image img --pool-prefetch 0 --exec -- "$BIN/maptest" img --expect keep.img --hold-ms 1500 > kill.out 2> kill.err &
rpid=$!
sleep 0.7
redis_kill_node "$P3"
timeout 60 tail --pid=$rpid -f /dev/null
wait $rpid
code=$?
[ $code != 0 ] || fail "a restore went on with a node gone"
grep -q "127.0.0.1:$P3" kill.err || fail "node killed: $(cat kill.err)"
grep -q '"wrong_pages"' kill.out && fail "the VMM ran on with a node gone: $(cat kill.out)"
echo ok

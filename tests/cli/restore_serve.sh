#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-restore --serve: fcclient plays Firecracker (anonymous guest memory, userfaultfd, one
# JSON message) and checks every page against the image, under every strategy, from plain
# and zstd-compressed parts; then --record produces a uffd loading set of the image.
set -u
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
"$BIN/mkfixture" img ls 8192 7 || exit 1
"$BIN/snap-split" --mem img -o s.split ls || exit 1
mkdir -p dax ssd
"$BIN/snap-place" s.split -o p.placed --tier rw=dram --tier ro=dax:"$W/dax" --tier cold=file:"$W/ssd" > /dev/null || exit 1
"$BIN/snap-place" s.split -o z.placed --tier rw=dram --tier ro=dram --tier cold=file:"$W/ssd" --compress > /dev/null || exit 1
"$BIN/snap-place" s.split -o m.placed --tier rw=dram --tier ro=dax:"$W/dax" --tier cold=dram > /dev/null || exit 1

serve() {  # serve NAME PLACED SERVER-ARGS...
  local name=$1 placed=$2; shift 2
  rm -f $name.sock
  timeout 120 "$BIN/snap-restore" $placed --serve "$W/$name.sock" --json --accept-timeout 30 "$@" > $name.json 2> $name.err &
  local spid=$!
  timeout 120 "$BIN/fcclient" --socket "$W/$name.sock" --image img --regions-mib 24,8 --threads 2 --json > $name.client 2> $name.client.err
  local crc=$?
  wait $spid
  local src=$?
  if [ $crc = 77 ]; then echo "skipped: $(cat $name.client.err)"; exit 77; fi
  [ $crc = 0 ] && [ $src = 0 ] || fail "$name: client exit $crc, server exit $src: $(cat $name.err $name.client.err $name.client)"
}
for placed in p.placed z.placed; do
  for s in vanilla reap faasnap tiered; do
    serve $s $placed --strategy $s
    python3 - $s.json $s $s.client <<'PY' || fail "$placed $s: $(cat $s.json)"
import json, os, sys
r = json.load(open(sys.argv[1])); s = sys.argv[2]; c = json.load(open(sys.argv[3]))
assert c["mismatched_pages"] == 0 and c["balloon_nonzero_pages"] == 0, c
assert r["strategy"] == s and r["peer_exited"]
f = r["stats"]
assert f["faults"] == f["read_faults"] + f["write_faults"] + f["wp_faults"] or f["faults"] >= f["read_faults"] + f["write_faults"], f
if s == "vanilla": assert r["eager_bytes"] == 0
if s == "reap": assert r["eager_bytes"] >= 2542 * 4096   # RW + RO + touched zero pages
if s == "faasnap": assert r["eager_bytes"] == 2542 * 4096  # RW + RO
if s == "tiered": assert r["eager_bytes"] == (2542 + 77) * 4096  # RW, the touched zero pages, then RO
if s != "vanilla": assert f["faults"] <= 32 * 1024 * 1024 // r["granule_bytes"] + 64, (f["faults"], r["granule_bytes"])  # one per granule at most, plus the balloon
assert r["granule_bytes"] == 16384  # COLD is on a file tier: the default granule is 16 KiB
# ... and the server polls for the next fault, with idle cores polling too (root's device)
assert r["fault_spin_us"] == 100, r["fault_spin_us"]
assert f["idle_poll"] == ("on" if os.access("/dev/cpu_dma_latency", os.W_OK) else "unavailable"), f["idle_poll"]
PY
  done
done
# COLD in memory: the default granule is 64 KiB (a round trip costs more than the extra copies).
serve mem m.placed --strategy tiered
python3 -c "
import json; d=json.load(open('mem.json')); assert d['granule_bytes']==65536 and d['stats']['faults'] <= 32*1024*1024//65536 + 64, d
assert d['fault_spin_us'] == 0 and d['stats']['idle_poll'] == 'off', d  # every part in memory: no polling" || fail "m.placed: $(cat mem.json)"
serve rec p.placed --strategy vanilla --record rec.ls
"$BIN/snap-stat" --json rec.ls > rec.stat || fail "snap-stat rec.ls"
python3 -c "
import json; d=json.load(open('rec.stat')); assert d['method']=='uffd' and d['touched_pages']>0 and d['written_pages']>0, d" || fail "record: $(cat rec.stat)"
"$BIN/snap-split" --mem img -o rec.split rec.ls || fail "the recorded loading set does not split against its image"

# Only the owner: the socket is 0600 even under umask 000. And a region past the 32 MiB image
# (24 + 16 MiB) is refused at the handshake: the server exits 1 naming it, the peer is killed.
(umask 000; exec timeout 60 "$BIN/snap-restore" p.placed --serve "$W/bad.sock" --accept-timeout 30 > bad.json 2> bad.err) &
spid=$!
for _ in $(seq 100); do [ -S "$W/bad.sock" ] && break; sleep 0.05; done
[ "$(stat -c %a "$W/bad.sock")" = 600 ] || fail "socket mode $(stat -c %a "$W/bad.sock"), wanted 600"
"$BIN/fcclient" make-image big.img --mib 40 > /dev/null || fail "fcclient make-image"
timeout 60 "$BIN/fcclient" --socket "$W/bad.sock" --image big.img --regions-mib 24,16 > bad.client 2>&1
crc=$?
wait $spid
src=$?
[ $src = 1 ] || fail "a region past the image: server exit $src ($(cat bad.err))"
grep -q "outside the 33554432-byte image" bad.err || fail "a region past the image: $(cat bad.err)"
[ $crc = 137 ] || fail "a region past the image: the peer was not killed (exit $crc: $(cat bad.client))"

# A descriptor that is not a userfaultfd (/dev/zero) is refused at once, the peer killed.
timeout 60 "$BIN/snap-restore" p.placed --serve "$W/zero.sock" --accept-timeout 30 > zero.json 2> zero.err &
spid=$!
for _ in $(seq 100); do [ -S "$W/zero.sock" ] && break; sleep 0.05; done
timeout 30 python3 - "$W/zero.sock" <<'PY' > zero.client 2>&1
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
fd = os.open("/dev/zero", os.O_RDONLY)
msg = json.dumps([{"base_host_virt_addr": 1 << 30, "size": 1 << 20, "offset": 0, "page_size": 4096}])
socket.send_fds(s, [msg.encode()], [fd])
time.sleep(20)  # the server kills us well before this
PY
crc=$?
wait $spid
src=$?
[ $src = 1 ] && grep -q "not a userfaultfd" zero.err || fail "/dev/zero as the userfaultfd: server exit $src ($(cat zero.err))"
[ $crc = 137 ] || fail "/dev/zero as the userfaultfd: the peer was not killed (exit $crc)"

# One VMM per server: once a client is connected the socket is gone (a second one is refused,
# not queued forever).
timeout 60 "$BIN/snap-restore" p.placed --strategy tiered --serve "$W/one.sock" --accept-timeout 30 > one.json 2> one.err &
spid=$!
timeout 60 "$BIN/fcclient" --socket "$W/one.sock" --image img --regions-mib 24,8 --delay-ms 1500 > one.client 2>&1 &
cpid=$!
sleep 0.8
[ ! -e "$W/one.sock" ] || fail "the socket is still there with a client connected"
wait $cpid || fail "one client: $(cat one.client)"
wait $spid || fail "one client: server $(cat one.err)"
echo ok

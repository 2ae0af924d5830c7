#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A handler that must die kills its Firecracker first (pid from SO_PEERCRED), so the VM does
# not hang forever on a fault nobody serves; and a broken handshake is a clean error.
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:?}
mkdir -p "$work" && cd "$work" || exit 1
for t in fcclient fcserve; do [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }; done
fail=0
"$bin/fcclient" make-image img --mib 16 || exit 1

# 1. The handler fails after a few faults: the client must be SIGKILLed (exit 137), not hang.
rm -f kill.sock
"$bin/fcserve" --socket "$work/kill.sock" --image img --granule-kib 4 --die-after-faults 5 2>kill.err &
spid=$!
timeout 60 "$bin/fcclient" --socket "$work/kill.sock" --image img --regions-mib 8,8 --threads 1 >kill.client 2>&1
crc=$?
wait $spid
src=$?
if [ $crc = 77 ]; then echo "skipped: $(cat kill.client)"; exit 77; fi
[ $crc = 137 ] || { echo "FAIL: client exit $crc, expected 137 (SIGKILL); 124 = it hung"; cat kill.client; fail=1; }
[ $src = 1 ] || { echo "FAIL: server exit $src, expected 1"; fail=1; }
grep -q "fcserve: error: dying on purpose" kill.err || { echo "FAIL: no error line"; cat kill.err; fail=1; }

# 2. The handler is signalled while serving: the client dies with it.
rm -f sig.sock
"$bin/fcserve" --socket "$work/sig.sock" --image img 2>sig.err &
spid=$!
timeout 60 "$bin/fcclient" --socket "$work/sig.sock" --image img --regions-mib 8,8 --threads 1 --delay-ms 3000 >sig.client 2>&1 &
cpid=$!
sleep 1
kill -TERM $spid
wait $cpid
crc=$?
wait $spid
[ $crc = 137 ] || { echo "FAIL: signalled handler: client exit $crc, expected 137"; fail=1; }

# 3. Broken handshakes are clean errors (exit 1, one line), never a hang or a crash.
if command -v python3 >/dev/null; then
  for case in garbage noregions nofd; do
    rm -f hs.sock
    "$bin/fcserve" --socket "$work/hs.sock" --image img 2>hs.$case.err &
    spid=$!
    python3 - "$work/hs.sock" "$case" <<'PY'
import socket, sys, time, array, os
path, case = sys.argv[1], sys.argv[2]
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path); break
    except OSError:
        time.sleep(0.05)
msg = {"garbage": b"[{not json", "noregions": b"[]",
       "nofd": b'[{"base_host_virt_addr":4096,"size":4096,"offset":0,"page_size":4096}]'}[case]
r, w = os.pipe()
if case == "nofd":
    s.sendall(msg)
else:
    s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))])
s.close()
PY
    wait $spid
    src=$?
    [ $src = 1 ] || { echo "FAIL: handshake $case: exit $src, expected 1"; fail=1; }
    grep -q "fcserve: error: firecracker handshake:" hs.$case.err || { echo "FAIL: handshake $case:"; cat hs.$case.err; fail=1; }
  done
fi

# 3b. A rejected handshake kills a peer that stays to wait for its memory.
if command -v python3 >/dev/null; then
  rm -f rej.sock
  "$bin/fcserve" --socket "$work/rej.sock" --image img 2>rej.err &
  spid=$!
  timeout 30 python3 - "$work/rej.sock" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.05)
s.sendall(b"[{not json")
time.sleep(20)  # killed long before this
PY
  crc=$?
  wait $spid
  [ $crc = 137 ] || { echo "FAIL: rejected handshake: the peer was not killed (exit $crc)"; fail=1; }
fi

# 4. Nobody connects: a timeout, not a hang.
rm -f idle.sock
timeout 30 "$bin/fcserve" --socket "$work/idle.sock" --image img --accept-timeout-ms 300 2>idle.err
src=$?
[ $src = 1 ] && grep -q "no connection" idle.err || { echo "FAIL: accept timeout: exit $src"; cat idle.err; fail=1; }

# 5. snap-restore --serve is SIGKILLed while serving (nothing to catch): its guardian kills the
#    client within a second instead of leaving it to hang on its next fault.
if [ -x "$bin/snap-restore" ] && [ -x "$bin/mkfixture" ]; then
  "$bin/mkfixture" fx.img fx.ls 4096 3 > /dev/null && "$bin/snap-split" -q --mem fx.img -o fx.split fx.ls &&
    mkdir -p fxdir && "$bin/snap-place" -q fx.split -o fx.placed --tier rw=file:"$work/fxdir" --tier ro=file:"$work/fxdir" \
      --tier cold=file:"$work/fxdir" || { echo "FAIL: fixture"; fail=1; }
  rm -f g.sock
  "$bin/snap-restore" fx.placed --strategy vanilla --serve "$work/g.sock" --accept-timeout 30 2> g.err &
  spid=$!
  timeout 60 "$bin/fcclient" --socket "$work/g.sock" --image fx.img --regions-mib 16 --threads 1 --delay-ms 20000 > g.client 2>&1 &
  cpid=$!
  for _ in $(seq 100); do [ -S "$work/g.sock" ] || break; sleep 0.05; done  # gone once connected
  sleep 0.3
  kill -9 $spid
  t0=$(date +%s%N)
  wait $cpid
  crc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  wait $spid 2>/dev/null
  [ $crc = 137 ] && [ $ms -lt 1000 ] || { echo "FAIL: SIGKILLed server: client exit $crc after $ms ms (137 within 1000 expected)"; cat g.client g.err; fail=1; }
fi

[ $fail = 0 ] && echo "ok: serve_kill_peer"
exit $fail

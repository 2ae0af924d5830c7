#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/pool_bench.sh BIN [MIB]: what a restore gets from one pool node (redis-server on
# loopback, started here and stopped at the end), against the bare store measured in the same
# run (snap-place --pool --calibrate: GET round trip and pipelined bandwidth):
#   bulk   the hot parts fetched before the guest runs (reap over --serve: its RW and RO
#          parts, window by window), page bytes per second of fetching and checking, with
#          64K, 16K (snap-place's default) and 4K chunks;
#   fault  a 4 KiB fault served from the pool on demand (vanilla over --serve, every page in
#          the pool, 4 KiB chunks, no read-ahead, fcclient touching pages in random order):
#          the fetch a fault waits for (fetch + XXH3-128 check), and the whole fault as the
#          server handles it (fetch + UFFDIO_COPY), per fault, against one bare GET; then the
#          same with --no-idle-poll (keys ending _no_idle_poll): idle cores halt as they would.
# Pages are incompressible (random bytes), so value bytes = page bytes.
# --busy keeps every core busy at nice 19 meanwhile (a host running other guests): on these
# virtual machines a core that goes idle takes ~20-70 us to wake, which a single round trip
# (client, server, and for a fault the guest, each sleeping in turn) pays at every hop.
# --halt-poll NS runs the bench with the guest kernel's idle polling at NS
# (/sys/module/haltpoll/parameters/guest_halt_poll_ns; root) and puts the old value back at
# the end. These machines boot with it at 0 (haltpoll.guest_halt_poll_ns=0 on the kernel
# command line; the kernel's own default is 200000): an idle core halts at once, and waking
# it costs a trip through the hypervisor. The value in force is reported either way.
set -euo pipefail
busy=0 halt_poll=
while :; do
  case "${1:-}" in
    --busy) busy=1; shift ;;
    --halt-poll) halt_poll=${2:?--halt-poll needs NS}; shift 2 ;;
    *) break ;;
  esac
done
BIN=${1:?usage: pool_bench.sh [--busy] [--halt-poll NS] BIN [MIB]}
MIB=${2:-256}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HP=/sys/module/haltpoll/parameters/guest_halt_poll_ns
hp_old=$(cat "$HP" 2> /dev/null || echo none)
W= spin=() hp_set=0
trap 'kill "${spin[@]}" 2> /dev/null || true; [ -z "$W" ] || rm -rf "$W"; [ $hp_set = 0 ] || echo "$hp_old" > "$HP"' EXIT
if [ -n "$halt_poll" ]; then
  [ "$hp_old" != none ] || { echo "pool_bench: --halt-poll: no $HP (the haltpoll cpuidle driver is not in use)" >&2; exit 1; }
  echo "$halt_poll" > "$HP" || { echo "pool_bench: --halt-poll: cannot write $HP (root?)" >&2; exit 1; }
  hp_set=1
fi
W=$(mktemp -d /tmp/snapkit-pool-bench.XXXXXX)
SNAPKIT_WORK=$W
if [ $busy = 1 ]; then
  for _ in $(seq "$(nproc)"); do nice -n 19 sh -c 'while :; do :; done' & spin+=($!); done
fi
source "$ROOT/tests/lib/redis.bash"
redis_available || { echo "pool_bench: redis-server is not installed" >&2; exit 1; }
redis_start_plain PORT
cd "$W"
pages=$((MIB * 256))
"$BIN/mkfixture" img ls $pages 5 --zero-pct 5 --random-pct 100 > /dev/null
"$BIN/snap-split" -q --mem img -o s.split ls
for c in 4K 64K; do
  "$BIN/snap-place" --pool "redis://127.0.0.1:$PORT/cal" --calibrate --chunk-size $c --json > cal$c.json
done
"$BIN/snap-place" -q s.split -o all4k.placed > /dev/null --tier rw=redis://127.0.0.1:$PORT/b4 --tier ro=redis://127.0.0.1:$PORT/b4 \
  --tier cold=redis://127.0.0.1:$PORT/b4 --chunk-size 4K > /dev/null
"$BIN/snap-place" -q s.split -o all16k.placed --tier rw=redis://127.0.0.1:$PORT/b16 --tier ro=redis://127.0.0.1:$PORT/b16 \
  --tier cold=redis://127.0.0.1:$PORT/b16 > /dev/null  # the default chunk size (16K)
"$BIN/snap-place" -q s.split -o all64k.placed --tier rw=redis://127.0.0.1:$PORT/b64 --tier ro=redis://127.0.0.1:$PORT/b64 \
  --tier cold=redis://127.0.0.1:$PORT/b64 --chunk-size 64K > /dev/null
regions="$((MIB * 3 / 4)),$((MIB - MIB * 3 / 4))"
serve() {  # serve NAME PLACED CLIENT-ARGS -- SERVER-ARGS
  local name=$1 placed=$2; shift 2
  local cargs=()
  while [ "$1" != "--" ]; do cargs+=("$1"); shift; done
  shift
  "$BIN/snap-restore" "$placed" --serve "$W/$name.sock" --json --accept-timeout 60 "$@" > $name.json &
  local spid=$!
  "$BIN/fcclient" --socket "$W/$name.sock" --image img --regions-mib "$regions" --json "${cargs[@]}" > $name.client
  wait $spid
}
serve bulk64 all64k.placed --threads 1 -- --strategy reap
serve bulk16 all16k.placed --threads 1 -- --strategy reap
serve bulk4 all4k.placed --threads 1 -- --strategy reap
serve fault all4k.placed --threads 1 --order random -- --strategy vanilla --granule 4K --pool-prefetch 0
# The same with idle cores left to halt while the server polls (--no-idle-poll).
serve fault_nip all4k.placed --threads 1 --order random -- --strategy vanilla --granule 4K --pool-prefetch 0 --no-idle-poll
python3 - "$W" $busy "$(cat "$HP" 2> /dev/null || echo none)" <<'PY'
import json, os, sys
w = sys.argv[1]
meas = {c: json.load(open(os.path.join(w, "cal%s.json" % c)))["measured"] for c in ("4K", "64K")}
out = {"get_4k_p50_us": meas["4K"]["get_p50_us"], "pipelined_4k_gbps": meas["4K"]["pipelined_gbps"],
       "get_64k_p50_us": meas["64K"]["get_p50_us"], "pipelined_64k_gbps": meas["64K"]["pipelined_gbps"]}
for name in ("bulk64", "bulk16", "bulk4"):
    p = json.load(open(os.path.join(w, name + ".json")))["pool"]
    c = json.load(open(os.path.join(w, name + ".client")))
    assert c["mismatched_pages"] == 0, c
    out[name + "_bytes"] = p["before_resume_bytes"]
    out[name + "_gbps"] = round(p["before_resume_bytes"] / max(p["bulk_ns"], 1), 2)
for name, sfx in (("fault", ""), ("fault_nip", "_no_idle_poll")):
    f = json.load(open(os.path.join(w, name + ".json")))
    c = json.load(open(os.path.join(w, name + ".client")))
    assert c["mismatched_pages"] == 0, c
    p = f["pool"]
    out["faults" + sfx] = f["stats"]["faults"]
    out["fault_fetches" + sfx] = p["demand_fetches"]
    out["fault_fetch_us" + sfx] = round(p["demand_ns"] / max(p["demand_fetches"], 1) / 1e3, 1)
    out["fault_us" + sfx] = round(f["phases_ns"]["faults"] / max(f["stats"]["faults"], 1) / 1e3, 1)
    out["fault_over_get" + sfx] = round(out["fault_us" + sfx] / out["get_4k_p50_us"], 2)
    out["fetch_over_get" + sfx] = round(out["fault_fetch_us" + sfx] / out["get_4k_p50_us"], 2)
    out["fault_spin_batches" + sfx] = f["stats"].get("spin_batches", 0)
    out["idle_poll" + sfx] = f["stats"].get("idle_poll", "off")
    out["idle_poll_windows" + sfx] = f["stats"].get("idle_poll_windows", 0)
out["busy"] = bool(int(sys.argv[2]))
out["guest_halt_poll_ns"] = None if sys.argv[3] == "none" else int(sys.argv[3])
print(json.dumps(out))
PY

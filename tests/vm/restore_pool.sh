#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real VM, the pool tier: for hello, json and pyaes, split a (cached) recorded loading set and
# place it on a 3-master Redis Cluster this script starts and stops (tests/lib/redis.bash):
#   1. rw=dram, ro=dax on /dev/shm, cold=redis://…/vmtest (restored with --drain-cold)
#   2. rw=dram, ro and cold both in the pool (RO installed eagerly from the pool)
# then restore with QEMU under snap-restore --strategy tiered --exec from an image path that
# does NOT exist (snap-restore makes a placeholder of the image's size for QEMU to map and
# removes it afterwards), invoke with the snapshot's test input and check the answer, and
# check in the report that pages came from the pool and the image was a placeholder.
# usage: restore_pool.sh [SNAPKIT_BIN]   (exit 77 = skipped)
source "$(dirname "$0")/lib.bash"
probe_vm
for t in snap-record snap-split snap-place snap-restore snap-stat; do
    [ -x "$SNAPKIT_BIN/$t" ] || skip "$t not built"
done
[ -f "$SNAPKIT_BIN/../lib/libsnaprestore.so" ] || skip "libsnaprestore.so not built"
source "$ROOT/tests/lib/redis.bash"
redis_available || skip "redis-server or redis-cli is not installed"
ensure_snapshot hello

W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W"
DAX=/dev/shm/snapkit-pool-$$
trap 'rm -rf "$DAX"' EXIT
mkdir -m 0700 "$DAX"
redis_start_cluster C 3 || fail "cannot start a 3-master redis cluster"
# ours first (its failure must not skip it), then the servers' (redis.bash: a trap set after
# the first start replaces its own and must call redis_cleanup itself)
trap 'rm -rf "$DAX"; redis_cleanup' EXIT
read -r C1 C2 C3 <<< "$C"
URL=redis://127.0.0.1:$C1,127.0.0.1:$C2,127.0.0.1:$C3/vmtest
B=$SNAPKIT_BIN
rows=()
for f in hello json pyaes; do
    S=$VMDIR/$f
    D=$W/$f
    mkdir -p "$D"
    ls=$(cached_loadset "$f")
    "$B/snap-split" --mem "$S/mem.img" -o "$D/s.split" -q "$ls" || fail "$f: snap-split"
    for layout in ro-dax ro-pool; do
        P=$D/$layout.placed
        case $layout in
            ro-dax) mkdir -m 0700 "$DAX/$f" && ro=dax:$DAX/$f drain=--drain-cold ;;
            ro-pool) ro=$URL drain= ;;
        esac
        "$B/snap-place" "$D/s.split" -o "$P" -q --tier rw=dram --tier ro="$ro" --tier cold="$URL" \
            --name "$f-$layout" > "$D/$layout.place.txt" || fail "$f $layout: snap-place"
        img=$D/absent-$layout.img  # never created by this script
        out=$("$SNAPVM" restore --snapshot "$S" --image "$img" --json \
            --wrap "$B/snap-restore $P --strategy tiered --image $img --json -o $D/$layout.report $drain --exec --") ||
            fail "$f $layout: restore failed: $out $(cat "$D/$layout.report" 2>/dev/null)"
        [ ! -e "$img" ] || fail "$f $layout: the placeholder $img was left behind"
        row=$(python3 - "$out" "$D/$layout.report" "$layout" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); p = json.load(open(sys.argv[2])); layout = sys.argv[3]
assert r["ok"] and r["answer"] == r["expected"] and r["exit_code"] == 0, r
assert r["input"] != json.load(open(r["snapshot"] + "/meta.json"))["record_input"], "not a test input"
assert p["vmm"]["exit_status"] == 0 and "error" not in p["preload"], p
assert p["strategy"] == "tiered" and p["image_placeholder"] is True, p
pool = p["pool"]
assert pool and set(pool["classes"]) == ({"cold"} if layout == "ro-dax" else {"ro", "cold"}), pool
# pages came from the pool: on demand while the guest ran, fetched whole before it resumed, or
# (ro-dax: a function may touch no COLD page) drained in the background (--drain-cold)
assert pool["demand_fetches"] > 0 or pool["before_resume_bytes"] > 0 or pool["fetched_bytes"] > 0, pool
if layout == "ro-pool": assert pool["classes"]["ro"]["bulk_bytes"] > 0, pool  # RO installed eagerly
for c, s in pool["classes"].items(): assert "prefetch_error" not in s, (c, s)
print("%-6s %-7s result %6.1f ms  plan %6.2f ms  pool: %4d demand fetches, %8d fault bytes, "
      "%8d before resume, %8d fetched in all"
      % (r["function"], layout, r["result_ms"], p["phases_ns"]["total"] / 1e6, pool["demand_fetches"],
         pool["fault_bytes"], pool["before_resume_bytes"], pool["fetched_bytes"]))
PY
        ) || fail "$f $layout: bad reports (above): $out"
        rows+=("$row")
    done
done
printf '%s\n' "${rows[@]}"
echo ok

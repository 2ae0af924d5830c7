#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/restore --quick as a smoke test (no timed assertion): on real recordings of hello and
# json (snap-record -m bpf around real-VM restores, with the test and the record inputs), every
# strategy and table runs, every replay verifies the pages it touched (the bench aborts on a
# wrong byte), and the report has every cell the tables need.
source "$(dirname "$0")/lib.bash"
probe_vm
[ -f "$SNAPKIT_BIN/../lib/libsnaprestore.so" ] || skip "libsnaprestore.so not built"
ensure_snapshot json
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W"
shm=$(mktemp -d /dev/shm/snapkit-bench-XXXXXX)
trap 'rm -rf "$shm"' EXIT
python3 "$ROOT/bench/restore" --quick --bin "$SNAPKIT_BIN" --snapshots "$VMDIR" --work "$W/work" --shm "$shm" \
  --json > "$W/quick.json" 2> "$W/quick.err" || fail "bench/restore --quick: $(tail -3 "$W/quick.err")"
python3 - "$W/quick.json" <<'PY' || fail "bench/restore --quick: incomplete report"
import json, sys
r = json.load(open(sys.argv[1]))
names = [f["name"] for f in r["functions"]]
assert names == ["hello", "json"], names
for f in r["functions"]:
    cells = f["replay"]
    for s in ("vanilla", "reap", "faasnap", "tiered"):
        for c in ("cold", "warm"):
            k = "main/%s/%s" % (s, c)
            assert cells[k]["runs"] == r["runs"] and cells[k]["verified_pages"] >= f["pages"]["touched"], k
    for k in ("main/dram/warm", "ssd/reap/cold", "ssd/faasnap/cold", "mis/reap/cold", "mis/faasnap/cold", "mis/tiered/cold"):
        assert cells[k]["restore_to_last_touch_ns"] > 0, k
    # tiered's schedule: one mapping, and private DRAM no more than RW + touched ZERO pages
    # + the huge-region rounding the plan reports (+ the replay's own few pages)
    t = cells["main/tiered/warm"]
    p = f["pages"]
    limit = (p["rw"] + p["zero_touched"] + t["rounding_pages"] + 64) * 4096
    assert t["private_dram_bytes"] <= limit, (t["private_dram_bytes"], limit)
    assert f["mis_pages"]["test"] == f["pages"]["touched"]
    # the misprediction cell counts the touches' faults only (the check pass samples untouched
    # pages where they are in memory): a fault is a touch of a page the placement did not
    # predict (COLD, or ZERO the record input did not touch), so there are no more of them
    # than unpredicted pages — the check pass alone used to add ~1,000
    # the misprediction bound's classes: every unpredicted page is COLD or ZERO in mis.placed
    # (the record input's split classes only the pages it touched RO or RW), COLD ones in runs
    u = f["mis_pages"]
    assert u["unpredicted_cold"] + u["unpredicted_zero_written"] + u["unpredicted_zero_read"] == u["unpredicted"], u
    assert (u["unpredicted_cold_runs"] > 0) == (u["unpredicted_cold"] > 0) and u["unpredicted_cold_runs"] <= u["unpredicted_cold"], u
    assert f["mis_bound_ns"] >= f["bound_ns"], (f["mis_bound_ns"], f["bound_ns"])
    m = cells["mis/tiered/cold"]
    assert r["fault_counts"] == "touches", r.get("fault_counts")
    assert m["demand_faults"] <= f["mis_pages"]["unpredicted"], (m["demand_faults"], f["mis_pages"])
    assert m["verified_pages"] >= f["pages"]["touched"], m
print("ok: %d functions, %d runs per cell" % (len(names), r["runs"]))
PY
python3 "$ROOT/bench/restore" --show "$W/quick.json" > "$W/quick.txt" || fail "--show"
grep -q "^Targets" "$W/quick.txt" || fail "no targets table"
echo ok

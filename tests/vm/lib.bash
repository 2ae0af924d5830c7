# SPDX-License-Identifier: Apache-2.0
# Shared by the real-VM tests: probe, locate, snapshot if needed.
# Sourced, not run.  Exit 77 = skipped (ctest SKIP_RETURN_CODE).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SNAPKIT_BIN=${1:-${SNAPKIT_BIN:-$ROOT/build/bin}}
SNAPVM=$ROOT/scripts/snapvm
VMDIR=${SNAPKIT_VMDIR:-$ROOT/build/vm}

skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

probe_vm() {
    [ -e /dev/kvm ] || skip "/dev/kvm missing"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm not accessible (need root or group kvm)"
    command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
    command -v python3 >/dev/null || skip "python3 missing"
    [ -f /usr/src/linux-source-6.1.tar.xz ] || [ -f "$ROOT/build/guest/vmlinux" ] || \
        skip "no guest kernel and no linux-source-6.1 to build one (see scripts/guest/deps.txt)"
}

# ensure_snapshot NAME: build the guest (cached) and snapshot NAME (cached).
# One boot snapshots all three test functions, so the next test finds its
# snapshot ready (a boot costs minutes under PVM).
ensure_snapshot() {
    mkdir -p "$VMDIR"
    # ctest -j: one build and one boot at a time, the others wait and then
    # find everything up to date
    exec 9>"$VMDIR/.lock"
    flock 9
    "$ROOT/scripts/guest/build.sh" >&2 || fail "guest build failed"
    "$SNAPVM" snapshot --out "$VMDIR" --functions "hello,json,pyaes,$1" >&2 ||
        fail "snapshot of $1 failed"
    flock -u 9
}

# restore_check NAME [snapvm restore options...]: restore, invoke with the
# snapshot's test input (not the one it was recorded with), check the answer
restore_check() {
    local name=$1; shift
    local out
    out=$("$SNAPVM" restore --snapshot "$VMDIR/$name" --json "$@") || fail "restore of $name failed: $out"
    python3 - "$out" <<'PY' || fail "bad report for $name: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["ok"] and r["answer"] == r["expected"], r
assert r["input"] != json.load(open(r["snapshot"] + "/meta.json"))["record_input"], "not a test input"
print("%s %s -> %s ok: resumed %.1f ms, result %.1f ms, guest %d us"
      % (r["function"], r["input"], r["answer"], r["resumed_ms"], r["result_ms"], r["guest_us"]))
PY
}

# cached_loadset NAME: print the path of a loading set of NAME's snapshot, recorded with its
# record input (pagemap, huge-page advice dropped, image evicted, as restore_strategies.sh
# does) once per snapshot and kept beside it in $VMDIR/NAME/pagemap.ls (redone when the
# snapshot or the recorder's output format changes; the caller splits it with its own tools).
cached_loadset() {
    local name=$1 S=$VMDIR/$1
    local ls=$S/pagemap.ls stamp
    stamp="$(sha256sum "$S/meta.json" | cut -d' ' -f1) $(stat -c '%s %Y' "$S/mem.img")"
    (
        exec 8>"$S/.loadset.lock"
        flock 8
        if [ -f "$ls" ] && [ "$(cat "$ls.stamp" 2>/dev/null)" = "$stamp" ] &&
            "$SNAPKIT_BIN/snap-stat" --json "$ls" > /dev/null 2>&1; then
            exit 0
        fi
        rm -f "$ls" "$ls.stamp"
        local rec_input
        rec_input=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['record_input'])" "$S/meta.json")
        "$SNAPVM" restore --snapshot "$S" --input "$rec_input" --nohuge --cold --json \
            --wrap "$SNAPKIT_BIN/snap-record --mem $S/mem.img -m pagemap -q -o $ls.tmp --" > "$S/.loadset.json" ||
            fail "$name: recording restore failed: $(cat "$S/.loadset.json")"
        mv "$ls.tmp" "$ls"
        echo "$stamp" > "$ls.stamp"
    ) >&2 || exit 1
    echo "$ls"
}

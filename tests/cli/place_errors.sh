#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-place refusals: exit codes and one-line messages naming the culprit.
set -uo pipefail
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
TD=${SNAPKIT_TESTDATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../testdata" && pwd)}
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect CODE PATTERN cmd...
    local code=$1 pat=$2; shift 2
    "$@" > out.txt 2> err.txt
    local rc=$?
    [ "$rc" = "$code" ] || fail "$* exited $rc, expected $code: $(cat err.txt)"
    grep -q -- "$pat" err.txt || fail "$*: stderr lacks '$pat': $(cat err.txt)"
}

# Any valid image and split will do: the committed ones (testdata/README.md), copied.
cp "$TD/image.mem" img && cp "$TD/pagemap.split" s.split || fail "no fixtures in $TD"

expect 2 "no output given" "$BIN/snap-place" s.split
expect 2 "unknown tier" "$BIN/snap-place" s.split -o p.placed --tier rw=tape:/x
expect 2 "unknown class" "$BIN/snap-place" s.split -o p.placed --tier hot=dram
expect 2 "no anonymous\|zero pages need no storage" "$BIN/snap-place" s.split -o p.placed --tier zero=dram
expect 2 "no tier can hold" "$BIN/snap-place" s.split -o p.placed --tiers dram --budget dram=4K
expect 2 "unknown cost parameter" "$BIN/snap-place" s.split -o p.placed --cost dram.speed=3
expect 4 "/sys/devices/system/node" "$BIN/snap-place" s.split -o p.placed --tier rw=numa:9
expect 3 "not a snapkit artifact" "$BIN/snap-place" img -o p.placed
[ ! -e p.placed ] || fail "an output was left behind"

# A placed artifact whose part is missing or altered: exit 3 naming the part file.
"$BIN/snap-place" s.split -o p.placed > /dev/null || fail place
ro=$(ls *.ro)
cp "$ro" ro.bak
printf 'X' | dd of="$ro" bs=1 seek=10 conv=notrunc status=none
expect 3 "$ro: part digest mismatch" "$BIN/snap-stat" --verify p.placed
expect 3 "$ro" "$BIN/reassemble" p.placed out.img
[ ! -e out.img ] || fail "partial reassembled image left behind"
rm "$ro"
expect 3 "$ro: cannot open part file" "$BIN/snap-stat" --verify p.placed
cp ro.bak "$ro"
"$BIN/snap-stat" --verify p.placed > /dev/null || fail "restored part still refused"

# A corrupt manifest: exit 3.
cp p.placed bad.placed
printf '\xff' | dd of=bad.placed bs=1 seek=200 conv=notrunc status=none
expect 3 "bad.placed" "$BIN/snap-stat" bad.placed

# --dry-run writes nothing; --json gives the estimate.
rm -f *.rw *.ro *.cold
"$BIN/snap-place" --dry-run --json s.split > dry.json || fail dry-run
[ -z "$(ls *.rw 2>/dev/null)" ] || fail "dry run wrote parts"
grep -q '"restore_us"' dry.json || fail "no estimate in --json"
echo ok

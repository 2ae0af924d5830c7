#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-restore --materialize: the image rebuilt from the placed artifact's parts (plain and
# zstd-compressed) equals the original byte for byte, and the loading set is warmed.
set -euo pipefail
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN/mkfixture" img ls 8192 7
"$BIN/snap-split" --mem img -o s.split ls
mkdir -p dax ssd
"$BIN/snap-place" s.split -o p.placed --tier rw=dram --tier ro=dax:"$W/dax" --tier cold=file:"$W/ssd" > /dev/null
"$BIN/snap-place" s.split -o z.placed --tier rw=dram --tier ro=dram --tier cold=file:"$W/ssd" --compress > /dev/null
rm s.split
for p in p z; do
  "$BIN/snap-restore" $p.placed --materialize out.$p.img --verify --json > $p.json
  cmp img out.$p.img || fail "$p: materialized image differs"
  python3 - $p.json <<'PY' || fail "$p: report $(cat $p.json)"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["front_end"] == "materialize" and r["image_bytes"] == 8192 * 4096
assert r["warmed_bytes"] > 0 and r["ready_ns"] > 0
PY
done
"$BIN/snap-restore" p.placed --materialize out.nw.img --no-warm -o report.txt
grep -q "warmed 0 bytes" report.txt || fail "--no-warm: $(cat report.txt)"
cmp img out.nw.img || fail "no-warm image differs"
echo ok

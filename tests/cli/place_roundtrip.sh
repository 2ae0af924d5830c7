#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# split -> place (model's choice, then dax/file with zstd) -> every part matches its digest ->
# the image reassembled from the placed artifact alone equals the original byte for byte.
# Also: same inputs give the same artifact bytes; re-placing keeps the parts.
set -euo pipefail
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
TD=${SNAPKIT_TESTDATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../testdata" && pwd)}
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

# The committed image and its split (testdata/README.md), copied: step 3 deletes the split.
cp "$TD/image.mem" img && cp "$TD/pagemap.split" s.split

# 1. Default tiers (dram + file:<output dir>), the model decides.
"$BIN/snap-place" s.split -o p.placed --json > place.json
python3 - place.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
e = j["estimate"]["classes"]
assert e["rw"]["tier"] == "dram" and e["rw"]["mechanism"] == "copy", e["rw"]
assert e["ro"]["mechanism"] == "map", e["ro"]
assert e["cold"]["tier"].startswith("file:"), e["cold"]
assert j["estimate"]["restore_us"] > 0
assert len(j["parts"]) == 3
PY
"$BIN/snap-stat" --verify p.placed > stat.txt || fail "snap-stat --verify"
grep -q "every part file matches its digest" stat.txt || fail "no verify line"
# Part digests are the XXH3-64 of the part files (checked independently of snap-stat).
"$BIN/snap-stat" --json p.placed > stat.json
python3 - stat.json <<'PY'
import json, sys, subprocess
j = json.load(open(sys.argv[1]))
assert j["kind"] == "placed" and j["image_pages"] == __import__("os").path.getsize("img") // 4096 == 256
assert j["zero_pages"] + j["ro_pages"] + j["rw_pages"] + j["cold_pages"] == j["image_pages"]
for p in j["parts"]:
    size = __import__("os").path.getsize(p["path"])
    assert size == p["stored_bytes"], (p, size)
    if subprocess.run(["which", "xxhsum"], capture_output=True).returncode == 0:
        out = subprocess.run(["xxhsum", "-H3", p["path"]], capture_output=True, text=True).stdout
        assert p["digest"] in out, (p["digest"], out)
PY

# 2. Deterministic and idempotent.
"$BIN/snap-place" -v s.split -o p2.placed 2> place2.err > /dev/null
cmp p.placed p2.placed || fail "same inputs gave different artifacts"
grep -c "kept" place2.err | grep -q 3 || fail "re-placing rewrote parts: $(cat place2.err)"

# 3. dax + file with zstd, split deleted: reassemble byte for byte.
mkdir -p dax ssd
"$BIN/snap-place" s.split -o t.placed --tiers dram,dax:"$W/dax",file:"$W/ssd" --budget dram=1M --compress --frame-size 128K > /dev/null
ls ssd/*.cold.f128k-z1.zst > /dev/null || fail "cold part not compressed on the file tier"
ls dax/*.ro > /dev/null || fail "ro not on dax"
mv s.split s.split.gone
"$BIN/reassemble" t.placed out.img > /dev/null
cmp out.img img || fail "reassembled image differs"
"$BIN/reassemble" p.placed out2.img > /dev/null
cmp out2.img img || fail "reassembled image (default tiers) differs"
echo ok

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Unchanged outputs stay untouched, tool by tool: a rerun that produces the same bytes leaves
# the output's inode and mtime as they were and says "output_unchanged": true in --json (exit
# 0); other bytes replace it and say false. snap-split, snap-place (manifest, plain and zstd
# parts, the RO layout file), snap-restore --materialize, snap-stat -o; snap-record reports
# the key (its recordings hold times: a rerun is a new file).
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
for t in snap-split snap-place snap-restore snap-stat mkfixture; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
fail() { echo "FAIL: $*"; exit 1; }
export PATH="$bin:$PATH"
stamps() { for f in "$@"; do stat -c '%n %i %.9Y %a' "$f"; done; }
# key FILE KEY: the JSON value of KEY (top level)
key() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$1" "$2"; }

mkfixture img ls 4096 7 > /dev/null
mkfixture img2 ls2 4096 8 > /dev/null

# snap-split: same inputs -> same bytes -> untouched; another loading set -> replaced.
snap-split --mem img -o s.split ls --json > s1.json || fail "split 1"
[ "$(key s1.json output_unchanged)" = false ] || fail "first split: $(cat s1.json)"
before=$(stamps s.split)
sleep 0.05
snap-split --mem img -o s.split ls --json > s2.json || fail "split 2"
[ "$(key s2.json output_unchanged)" = true ] || fail "second split: $(cat s2.json)"
[ "$(stamps s.split)" = "$before" ] || fail "an unchanged split was rewritten"
snap-split --mem img --merge union -o s.split ls ls --json > s3.json || fail "split 3"
[ "$(key s3.json output_unchanged)" = false ] && [ "$(stamps s.split)" != "$before" ] || fail "a different split was not written"
snap-split --mem img -o s.split ls -q || fail "split 4"

# snap-place: manifest, plain parts, zstd parts, layout.
mkdir -p -m 700 dax ssd dram
place() { snap-place s.split -o p.placed --staging "$PWD/dram" --tier rw=dram --tier ro=dax:"$PWD/dax" --tier cold=file:"$PWD/ssd" --compress --json; }
place > p1.json || fail "place 1"
[ "$(key p1.json output_unchanged)" = false ] || fail "first place: $(cat p1.json)"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["parts"]; assert not any(x["reused"] for x in p), p' p1.json || fail "first place reused: $(cat p1.json)"
files=(p.placed dram/* dax/* ssd/*)
[ ${#files[@]} -ge 4 ] || fail "parts: ${files[*]}"
ls ssd | grep -q 'zst$' || fail "no zstd part in ssd: $(ls ssd)"
ls dax | grep -q 'layout$' || fail "no layout file in dax: $(ls dax)"
before=$(stamps "${files[@]}")
sleep 0.05
place > p2.json || fail "place 2"
[ "$(key p2.json output_unchanged)" = true ] || fail "second place: $(cat p2.json)"
python3 - p2.json << 'PY' || fail "second place: parts not reused: $(cat p2.json)"
import json, sys
parts = json.load(open(sys.argv[1]))["parts"]
assert parts and all(p["reused"] for p in parts), parts
assert any(p["compression"] == "zstd" for p in parts), parts
assert [p.get("layout_reused") for p in parts if p["layout_path"]] == [True], parts
PY
[ "$(stamps "${files[@]}")" = "$before" ] || fail "re-placing rewrote files: $(diff <(echo "$before") <(stamps "${files[@]}"))"
ls -A . dax ssd dram | grep -q '\.tmp\.' && fail "temporaries left: $(ls -A . dax ssd dram)"

# snap-restore --materialize: the same image again -> untouched.
snap-restore p.placed --materialize m.img --json > m1.json || fail "materialize 1"
cmp -s img m.img || fail "materialized image differs"
[ "$(key m1.json output_unchanged)" = false ] || fail "first materialize: $(cat m1.json)"
before=$(stamps m.img)
snap-restore p.placed --materialize m.img --json > m2.json || fail "materialize 2"
[ "$(key m2.json output_unchanged)" = true ] && [ "$(stamps m.img)" = "$before" ] || fail "second materialize: $(cat m2.json)"
cp img2 m.img  # same size, other bytes: replaced
snap-restore p.placed --materialize m.img --json > m3.json || fail "materialize 3"
[ "$(key m3.json output_unchanged)" = false ] && cmp -s img m.img || fail "materialize over other bytes: $(cat m3.json)"

# snap-stat -o REPORT: the same report -> untouched.
snap-stat --json -o st.json s.split || fail "stat 1"
before=$(stamps st.json)
sleep 0.05
snap-stat --json -o st.json s.split || fail "stat 2"
[ "$(stamps st.json)" = "$before" ] || fail "an unchanged snap-stat report was rewritten"
snap-stat --json -o st.json p.placed || fail "stat 3"
[ "$(stamps st.json)" != "$before" ] || fail "a new snap-stat report was not written"

# snap-record: the key is there (false: a recording holds its times).
if [ -x "$bin/snap-record" ] && [ -x "$bin/rwload" ] && [ -r /proc/self/pagemap ]; then
  snap-record --method pagemap --interval 0 --rss-trigger 0 --mem img -o r.ls --json -- "$bin/rwload" img --seed 3 --reads 50 --writes 10 > r1.json ||
    fail "record: $(cat r1.json)"
  [ "$(key r1.json output_unchanged)" = false ] || fail "record: $(cat r1.json)"
fi
echo "ok: unchanged outputs left untouched and reported by snap-split, snap-place, snap-restore, snap-stat"

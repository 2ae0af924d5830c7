#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-restore --exec says when a schedule falls back (pages from the image instead of their
# part: plan.fallback_pages in --json) and --strict makes it an error (exit 1, naming why);
# a schedule that does not fall back passes --strict.
set -u
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
"$BIN/mkfixture" img ls 4096 9 > /dev/null || exit 1
"$BIN/snap-split" -q --mem img -o s.split ls || exit 1
mkdir -p ssd
# RO compressed on a file tier: faasnap maps RO from its part, so it must take RO from the image.
"$BIN/snap-place" s.split -o z.placed --tier rw=dram --tier ro=file:"$W/ssd" --tier cold=file:"$W/ssd" --compress > /dev/null || exit 1
"$BIN/snap-restore" z.placed --strategy faasnap --image img --dry-run --exec --json > fs.json || fail "dry run: $(cat fs.json)"
python3 -c "
import json; j = json.load(open('fs.json'))
fb = j['plan']['fallback_pages']; assert fb['ro'] > 0 and fb['cold'] == 0, fb" || fail "faasnap fallback not reported: $(cat fs.json)"
"$BIN/snap-restore" z.placed --strategy faasnap --image img --strict --exec -- "$BIN/maptest" img > st.out 2> st.err && fail "--strict let a fall-back run"
grep -q "strict: .* pages would come from the image" st.err || fail "--strict: $(cat st.err)"
# tiered with --layered on the same placement: RO compressed, read from the image: refused too.
"$BIN/snap-restore" z.placed --strategy tiered --layered --image img --strict --exec -- "$BIN/maptest" img > /dev/null 2> tl.err && fail "--strict let layered tiered fall back"
# reap installs from the parts (compressed parts decompressed): nothing to fall back on.
"$BIN/snap-restore" z.placed --strategy reap --image img --strict --exec -- "$BIN/maptest" img > r.out || fail "reap --strict: $(cat r.out)"
grep -q '"wrong_pages": 0' r.out || fail "reap: $(cat r.out)"
echo ok

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 2 MiB-page snapshots with the defaults (issue 10): snap-place takes a 2 MiB split as it is
# (frame and chunk sizes follow the page size), plain and --compress, and the reassembled
# image is the original byte for byte; --serve's default granule fits the page size.
set -u
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
"$BIN/mkfixture" img ls 48 3 --page-size 2097152 || fail "mkfixture"
"$BIN/snap-split" -q --page-size 2097152 --mem img -o s.split ls || fail "split"
"$BIN/snap-place" s.split -o p.placed > /dev/null || fail "place a 2 MiB split with the defaults"
"$BIN/snap-place" s.split -o z.placed --compress --json > z.json || fail "place a 2 MiB split with --compress"
python3 -c "
import json; j = json.load(open('z.json'))
for p in j['parts']:
    assert p['compression'] in ('zstd', 'none'), p
" || fail "$(cat z.json)"
"$BIN/snap-stat" --json z.placed | python3 -c "
import json, sys; j = json.load(sys.stdin)
for p in j['parts']:
    if p['compression'] == 'zstd': assert p['frame_bytes'] == 2097152, p
" || fail "frames of a 2 MiB split are not one page"
for p in p z; do
  "$BIN/snap-restore" $p.placed --materialize o.img > /dev/null || fail "$p: materialize"
  cmp o.img img || fail "$p: the reassembled image differs"
done
"$BIN/snap-restore" p.placed --strategy tiered --serve "$W/s.sock" --dry-run > dry.txt || fail "--serve --dry-run: $(cat dry.txt)"
"$BIN/snap-restore" p.placed --serve "$W/s.sock" --granule 64K --accept-timeout 1 2> g.err && fail "a 64K granule on 2 MiB pages was taken"
grep -q "multiple of the page size (2097152)" g.err || fail "granule error: $(cat g.err)"
echo ok

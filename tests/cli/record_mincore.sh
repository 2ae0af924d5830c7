#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-record --method mincore on rwload: the image is dropped from the page cache first
# (checked: nothing resident at the start although the image was warm), every page the
# workload touched is in the set, and --keep-cache reports what it cannot see.
set -eu
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
mkdir -p "$work" && cd "$work"
for t in snap-record rwload mkimage; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
fail() { echo "FAIL: $*"; exit 1; }
json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }

"$bin/mkimage" img --mib 256 --zero-pct 0 --seed 5
fstype=$(stat -f -c %T .)
[ "$fstype" != tmpfs ] || { echo "skipped: scratch dir is on tmpfs (the page cache cannot be dropped)"; exit 77; }
cat img > /dev/null  # warm: the drop must undo this

"$bin/snap-record" --method mincore --mem img -o m.ls --json -- \
    "$bin/rwload" img --seed 21 --reads 12 --writes 6 --truth m.truth --pause-ms 100 > m.json
[ "$(json_field m.json resident_at_start_pages)" = 0 ] ||
  fail "the page cache drop did not work: $(json_field m.json resident_at_start_pages) pages resident at start"
[ "$(json_field m.json cache_dropped)" = true ] || fail "cache_dropped not reported"
[ "$(json_field m.json written_pages)" = null ] || fail "mincore claims to know writes"
"$bin/snap-stat" --list m.ls | awk '{print $1}' | sort > m.all
awk '{print $1}' m.truth | sort > m.tall
missing=$(comm -23 m.tall m.all | wc -l)
[ "$missing" = 0 ] || fail "$missing touched pages missing from the mincore set"
pages=$(json_field m.json touched_pages)
[ "$pages" -lt 65536 ] || fail "every page recorded: the drop or the baseline is wrong"
echo "ok: mincore: $pages pages recorded for $(wc -l < m.tall) touched (readahead $(json_field m.json read_ahead_bytes) bytes)"

# --keep-cache on a warm image: pages resident before the start are not attributed, and said so.
cat img > /dev/null
"$bin/snap-record" --method mincore --keep-cache --mem img -o k.ls --json -- \
    "$bin/rwload" img --seed 22 --reads 12 --writes 6 --pause-ms 10 > k.json
resident=$(json_field k.json resident_at_start_pages)
[ "$resident" -gt 0 ] || fail "--keep-cache: warm image but nothing resident at start"
grep -q 'resident before the target started (--keep-cache)' k.json || fail "--keep-cache limitation not reported"
echo "ok: --keep-cache reports $resident pages it cannot attribute"

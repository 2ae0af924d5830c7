#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An image is fingerprinted once: snap-record and snap-split remember the fingerprint in the
# verdict cache by the image's stamp (device, inode, size, mtime, ctime) and hash only on a
# miss. The second run says "remembered" (--json fingerprint_source); --rehash hashes; after
# any change to the image (even with its old mtime put back by touch -d) it is hashed again.
# And the split's bytes do not depend on --threads or on where the fingerprint came from.
set -u
bin=${1:?bin dir}
td=${SNAPKIT_TESTDATA:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export SNAPKIT_CACHE=$work/cache
fail() { echo "FAIL: $*"; exit 1; }
source_of() { sed -n 's/.*"fingerprint_source":"\([a-z]*\)".*/\1/p' "$1"; }

cp "$td/image.mem" img.mem
cp "$td/pagemap.ls" img.ls
sleep 0.1  # a stamp younger than the clock's granularity is never remembered

# snap-split: hashed, then remembered; the same bytes either way and with any thread count.
"$bin/snap-split" --json --mem img.mem -o a.split img.ls > a.json || fail "split 1"
[ "$(source_of a.json)" = hashed ] || fail "first split: $(cat a.json)"
"$bin/snap-split" --json --mem img.mem -o b.split img.ls > b.json || fail "split 2"
[ "$(source_of b.json)" = remembered ] || fail "second split: $(cat b.json)"
cmp -s a.split "$td/pagemap.split" || fail "split differs from testdata/pagemap.split"
cmp -s a.split b.split || fail "remembered fingerprint changed the split"
for t in 1 2 3 5; do
  "$bin/snap-split" -q --threads $t --mem img.mem -o t$t.split img.ls || fail "--threads $t"
  cmp -s t$t.split a.split || fail "--threads $t changed the split"
done
"$bin/snap-split" --json --rehash --mem img.mem -o c.split img.ls > c.json || fail "split --rehash"
[ "$(source_of c.json)" = hashed ] || fail "--rehash: $(cat c.json)"
cmp -s c.split a.split || fail "--rehash changed the split"

# A change that keeps size and mtime (touch -d puts the old mtime back; ctime moves): hashed
# again, and the new content is what the fingerprint says.
mtime=$(stat -c %y img.mem)
printf 'x' | dd of=img.mem bs=1 seek=100 conv=notrunc status=none
touch -d "$mtime" img.mem
[ "$(stat -c %y img.mem)" = "$mtime" ] || fail "touch -d did not restore the mtime"
sleep 0.1
rc=0; "$bin/snap-split" --json --mem img.mem -o d.split img.ls > d.json 2> d.err || rc=$?
[ "$rc" = 3 ] || fail "split of a changed image: exit $rc, want 3 (another image): $(cat d.err)"
grep -q "recorded against another image" d.err || fail "message: $(cat d.err)"
grep -q '"exit_code":3' d.json || fail "json: $(cat d.json)"

# snap-record: --rehash hashes whatever is remembered (the failed split above remembered the
# new content's fingerprint: it was hashed from the unchanged file); then it is remembered.
"$bin/snap-record" --json --rehash --mem img.mem -o r1.ls -- true > r1.json 2> /dev/null || fail "record --rehash"
[ "$(source_of r1.json)" = hashed ] || fail "record --rehash: $(cat r1.json)"
"$bin/snap-record" --json --mem img.mem -o r2.ls -- true > r2.json 2> /dev/null || fail "record 2"
[ "$(source_of r2.json)" = remembered ] || fail "second record: $(cat r2.json)"
want=$(sed -n 's/.*"image_fingerprint":"\([0-9a-f]*\)".*/\1/p' r1.json)
[ "$(sed -n 's/.*"image_fingerprint":"\([0-9a-f]*\)".*/\1/p' r2.json)" = "$want" ] || fail "remembered fingerprint differs"
if command -v xxhsum > /dev/null; then
  [ "$(xxhsum -H3 img.mem | awk '{print $1}' | sed 's/^XXH3_//')" = "$want" ] || fail "fingerprint is not xxhsum -H3's"
fi
chmod 600 img.mem  # ctime only
sleep 0.1
"$bin/snap-record" --json --mem img.mem -o r3.ls -- true > r3.json 2> /dev/null || fail "record 3"
[ "$(source_of r3.json)" = hashed ] || fail "record after chmod: $(cat r3.json)"
# A record of the new image, split: remembered from snap-record's hash.
"$bin/snap-split" --json --mem img.mem -o e.split r3.ls > e.json || fail "split of the new image"
[ "$(source_of e.json)" = remembered ] || fail "split after record: $(cat e.json)"

# No cache: hashed every time, still right.
SNAPKIT_CACHE=/nonexistent/x/y "$bin/snap-split" --json --mem img.mem -o f.split r3.ls > f.json 2> f.err || fail "split without a cache: $(cat f.err)"
[ "$(source_of f.json)" = hashed ] || fail "no cache: $(cat f.json)"
cmp -s e.split f.split || fail "cache changed the split"
echo "ok: fingerprints remembered by stamp, rehashed after a change, splits identical"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-restore --exec with a host process instead of a VMM: maptest maps the image the way
# QEMU does (share=off) and checks every page against the image and that writes never reach
# it, under every strategy — tiered both with its RO tier on tmpfs (one mapping of the layout
# file, userfaultfd for the rest) and on a disk directory (layered mappings); then the
# refusals: a shared mapping, a missing part, a budget the plan cannot meet, the wrong image.
set -euo pipefail
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f "$BIN/../lib/libsnaprestore.so" ] || { echo "skipped: libsnaprestore.so not built"; exit 77; }

"$BIN/mkfixture" img ls 8192 7
"$BIN/snap-split" --mem img -o s.split ls
mkdir -p dax ssd
"$BIN/snap-place" s.split -o p.placed --tier rw=dram --tier ro=dax:"$W/dax" --tier cold=file:"$W/ssd" > /dev/null
"$BIN/snap-place" s.split -o z.placed --tier rw=dram --tier ro=dram --tier cold=file:"$W/ssd" --compress > /dev/null
shm=$(mktemp -d /dev/shm/snapkit-test-XXXXXX)
trap 'rm -rf "$shm"' EXIT
"$BIN/snap-place" s.split -o m.placed --tier rw=dram --tier ro=dax:"$shm" --tier cold=file:"$W/ssd" --compress > /dev/null
ls "$shm"/*.ro.layout > /dev/null || fail "no layout file beside the RO part on tmpfs"
sum0=$(sha256sum img | cut -d' ' -f1)

for placed in p.placed z.placed m.placed; do
  for s in vanilla reap faasnap tiered; do
    extra=()
    [ $s = tiered ] && extra=(--drain-cold)
    "$BIN/snap-restore" $placed --strategy $s --image img --json -o $s.json "${extra[@]}" --exec -- \
      "$BIN/maptest" img --writes 400 --seed 3 > $s.out || fail "$placed $s: exit $? ($(cat $s.out))"
    grep -q '"wrong_pages": 0' $s.out || fail "$placed $s: $(cat $s.out)"
    python3 - $s.json $s $placed <<'PY' || fail "$placed $s: report $(cat $s.json)"
import json, sys
r = json.load(open(sys.argv[1])); s = sys.argv[2]; placed = sys.argv[3]
p = r["preload"]
assert r["strategy"] == s and r["vmm"]["exit_status"] == 0
assert p["image_mapped"] and p["image_mappings"] == 1 and "error" not in p, p
assert r["mappings"] >= 1 and r["ready_ns"] > 0
pages = r["plan"]["mechanism_pages"]
assert sum(sum(m.values()) for m in pages.values()) == 8192
if s == "vanilla": assert r["plan"]["ops"] == {"anon": 0, "copy": 0, "map": 0} and r["copied_bytes"] == 0
# reap: the working set installed over userfaultfd from the parts read whole, the rest on demand
if s == "reap":
    assert r["plan"]["demand"] and r["plan"]["base"] == "anon" and r["mappings"] == 1
    assert pages["rw"]["install"] > 0 and pages["cold"]["demand"] > 0
    assert r["eager_bytes"] == r["plan"]["eager_pages"] * 4096 > 0 and r["loaded_bytes"] > 0
# tiered: with the layout file on tmpfs one mapping and userfaultfd; elsewhere the layered plan
if s == "tiered" and placed == "m.placed":
    assert r["plan"]["base"] == "file" and r["plan"]["demand"] and r["mappings"] == 1, r["plan"]
    assert pages["ro"]["map"] == sum(pages["ro"].values()) and pages["rw"]["install"] == sum(pages["rw"].values())
    assert r["eager_bytes"] == r["plan"]["eager_pages"] * 4096 > 0 and p["base"] == "file"
    assert r["stats"]["eexist_ioctls"] == 0, r["stats"]  # in-place pages are never installed
elif s in ("faasnap", "tiered"): assert pages["zero"]["anon"] > 0 and not r["plan"]["demand"]
if s == "faasnap": assert p["prefetch"]["fetched_pages"] >= 0
PY
  done
  # the same with the image mapped from page 1024 on (a second region of the same file)
  "$BIN/snap-restore" $placed --strategy tiered --image img -q --exec -- "$BIN/maptest" img --offset-pages 1024 > off.out ||
    fail "$placed: offset mapping: $(cat off.out)"
done
# --overlap: mmap() returns before the eager installs are done; maptest touches at once, so its
# first touches race the installs (and wait on the userfaultfd): every page must still be right.
for s in reap tiered; do
  "$BIN/snap-restore" m.placed --strategy $s --overlap --image img --json -o ov-$s.json --exec -- \
    "$BIN/maptest" img --writes 400 --seed 5 > ov-$s.out || fail "--overlap $s: exit $? ($(cat ov-$s.out))"
  grep -q '"wrong_pages": 0' ov-$s.out || fail "--overlap $s: $(cat ov-$s.out)"
  python3 -c "
import json; r=json.load(open('ov-$s.json')); p=r['preload']
assert p['uffd']['early_return'] and r['eager_bytes'] == r['plan']['eager_pages'] * 4096 > 0, r" || fail "--overlap $s: $(cat ov-$s.json)"
done
[ "$(sha256sum img | cut -d' ' -f1)" = "$sum0" ] || fail "the image was written"

# A shared mapping would write the image: the preload ends the process, exit 1, one line.
cp img img2
set +e
"$BIN/snap-restore" p.placed --strategy faasnap --image img2 --exec -- "$BIN/maptest" img2 --shared > sh.out 2> sh.err
rc=$?
set -e
[ $rc = 1 ] || fail "shared mapping: exit $rc"
grep -q "^snap-restore: error: the VMM maps the image shared" sh.err || fail "shared mapping: $(cat sh.err)"
cmp img img2 || fail "shared mapping: img2 was written"

# Usage errors and bad inputs, each with its exit code and one error line.
expect() {  # expect CODE PATTERN CMD...
  local code=$1 pat=$2; shift 2
  set +e; "$@" > e.out 2> e.err; local rc=$?; set -e
  [ $rc = "$code" ] || fail "$*: exit $rc, wanted $code ($(cat e.err))"
  grep -q "$pat" e.err || fail "$*: stderr $(cat e.err), wanted $pat"
}
expect 2 "unknown strategy" "$BIN/snap-restore" p.placed --strategy lazy --image img --exec -- true
expect 2 "choose one front-end" "$BIN/snap-restore" p.placed --strategy reap
expect 2 "needs --image" "$BIN/snap-restore" p.placed --strategy reap --exec -- true
expect 2 "overlap works with --exec under" "$BIN/snap-restore" p.placed --strategy faasnap --overlap --image img --exec -- true
expect 2 "needs --strategy vanilla" "$BIN/snap-restore" p.placed --strategy reap --record x.ls --image img --exec -- true
expect 2 "works with --serve or --exec" "$BIN/snap-restore" p.placed --record x.ls --materialize m.img
expect 2 "mappings, more than" "$BIN/snap-restore" p.placed --strategy faasnap --image img --max-mappings 2 --exec -- true
head -c 4096 img > short
expect 3 "bytes, the placed artifact" "$BIN/snap-restore" p.placed --strategy reap --image short --exec -- true
expect 1 "never mapped" "$BIN/snap-restore" p.placed --strategy reap --image img --exec -- true
# A VMM's failure is a runtime failure (1), its own code not passed through: 3 is not "bad artifact".
expect 1 "sh exited with status 3" "$BIN/snap-restore" p.placed --strategy vanilla --image img --exec -- sh -c 'exit 3'
expect 1 "sh was killed by signal 9" "$BIN/snap-restore" p.placed --strategy vanilla --image img --exec -- sh -c 'kill -9 $$'
mv dax dax.gone
expect 3 "\.ro" "$BIN/snap-restore" p.placed --strategy tiered --image img --exec -- "$BIN/maptest" img
mv dax.gone dax
# Parts only from inside their tiers: a part swapped for a symlink to another file (same bytes,
# so no digest would notice), or a part anyone may rewrite, is refused before the VMM runs.
ro=$(ls dax/*.ro)
mkdir -p elsewhere && cp "$ro" elsewhere/ && mv "$ro" "$ro.real" && ln -s "$W/elsewhere/$(basename "$ro")" "$ro"
expect 3 "outside its tier directory" "$BIN/snap-restore" p.placed --strategy faasnap --image img --exec -- "$BIN/maptest" img
rm "$ro" && mv "$ro.real" "$ro"
chmod o+w "$ro"
expect 3 "writable by every user" "$BIN/snap-restore" p.placed --strategy faasnap --image img --exec -- "$BIN/maptest" img
chmod o-w "$ro"
# If snap-restore dies (SIGKILL: nothing to catch), the VMM of a userfaultfd schedule dies too,
# within a second, rather than hang on a fault nobody serves.
"$BIN/snap-restore" m.placed --strategy tiered --image img -q --exec -- "$BIN/maptest" img --hold-ms 3000 > hold.out 2>&1 &
srpid=$!
vmm=""
for _ in $(seq 100); do vmm=$(pgrep -P $srpid maptest || true); [ -n "$vmm" ] && break; sleep 0.05; done
[ -n "$vmm" ] || fail "no VMM under snap-restore"
sleep 0.5  # let it map the image and connect
alive() {  # running, not a zombie (the reaper here may be slow to collect orphans)
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
kill -9 $srpid
for _ in $(seq 20); do alive "$vmm" || break; sleep 0.05; done
if alive "$vmm"; then kill -9 "$vmm"; fail "the VMM outlived a SIGKILLed snap-restore by 1 s"; fi
wait $srpid 2>/dev/null || true

# Verified by default: every part is hashed before anything is served, then remembered while
# unchanged; a same-size change of a part, or a changed image, is refused before the VMM runs
# (exit 3, the file named). --no-verify is the named escape.
export SNAPKIT_CACHE=$W/cache
"$BIN/snap-restore" p.placed --strategy vanilla --image img --json -o v1.json --exec -- "$BIN/maptest" img > /dev/null
"$BIN/snap-restore" p.placed --strategy vanilla --image img --json -o v2.json --exec -- "$BIN/maptest" img > /dev/null
python3 -c "
import json
a, b = json.load(open('v1.json'))['verify'], json.load(open('v2.json'))['verify']
assert a['hashed_files'] >= 3 and a['image_verdict'] == 'hashed', a
assert b['hashed_files'] == 0 and b['remembered_files'] == a['hashed_files'] and b['image_verdict'] == 'remembered', b" ||
  fail "verification not remembered: $(cat v1.json v2.json)"
rw=$(ls ./*.rw 2>/dev/null || ls "$W"/*.rw)
cp "$rw" rw.orig
printf '\x5a' | dd of="$rw" bs=1 seek=100 conv=notrunc status=none
expect 3 "part digest mismatch" "$BIN/snap-restore" p.placed --strategy tiered --image img --exec -- "$BIN/maptest" img
"$BIN/snap-restore" p.placed --strategy vanilla --image img --no-verify -q --exec -- "$BIN/maptest" img > /dev/null ||
  fail "--no-verify refused"
cp rw.orig "$rw"
cp img img3
printf '\x5a' | dd of=img3 bs=1 seek=100 conv=notrunc status=none
"$BIN/snap-restore" p.placed --strategy vanilla --image img3 -q --dry-run > /dev/null  # (a dry run reads no image)
expect 3 "fingerprint" "$BIN/snap-restore" p.placed --strategy vanilla --image img3 --exec -- "$BIN/maptest" img3
unset SNAPKIT_CACHE
# --dry-run is honoured by every front-end: nothing listens, nothing is written.
"$BIN/snap-restore" p.placed --strategy tiered --serve "$W/dry.sock" --dry-run --json > dry-serve.json || fail "dry run --serve"
[ ! -e "$W/dry.sock" ] || fail "dry run --serve made a socket"
"$BIN/snap-restore" p.placed --strategy tiered --materialize "$W/dry.img" --dry-run --json > dry-mat.json || fail "dry run --materialize"
[ ! -e "$W/dry.img" ] || fail "dry run --materialize wrote the image"
python3 -c "
import json
for f, fe in (('dry-serve.json', 'serve'), ('dry-mat.json', 'materialize')):
    j = json.load(open(f)); assert j['dry_run'] and j['front_end'] == fe and j['serve_install_pages'] > 0, j" || fail "dry run reports"
"$BIN/snap-restore" p.placed --strategy faasnap --image img --dry-run --json > dry.json
python3 -c "import json; j=json.load(open('dry.json')); assert j['mappings'] == j['plan']['mappings'] > 1" || fail "dry run"
echo ok

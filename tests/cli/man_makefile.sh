#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Makefile of snapkit(7) EXAMPLES runs as printed: extracted from the man page (man escapes
# undone, nothing else changed) and run on an image of mkimage with ./restore.sh a host process
# that maps the image privately (rwload). make keeps the intermediates (.ls, .split), a second
# make does nothing, a step whose output comes out the same leaves it untouched so nothing
# after it reruns, and a failing step leaves no valid-looking output behind.
set -u
bin=${1:?bin dir}
root=${SNAPKIT_ROOT:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
for t in snap-record snap-split snap-stat rwload mkimage; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
command -v make > /dev/null || { echo "skipped: make is not installed"; exit 77; }
[ -r /proc/self/pagemap ] || { echo "skipped: no /proc/self/pagemap"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
export PATH="$bin:$PATH"
# ino+mtime of FILE
stamp() { stat -c '%i %Y.%y' "$1"; }

# The block after "A Makefile:" in EXAMPLES, from .nf to .fi.
sed -n '/^\.SH EXAMPLES/,/^\.SH [A-Z]/p' "$root/man/snapkit.7" |
  awk '/^A Makefile:/ {want=1} want && /^\.nf/ {on=1; next} on && /^\.fi/ {exit} on {print}' |
  sed -e 's/\\-/-/g' -e 's/^\\&//' -e 's/\\e/\\/g' > Makefile
grep -q '^%.json: %.split' Makefile && grep -qP '^\tsnap-stat' Makefile || fail "no Makefile extracted: $(cat Makefile)"
printf '#!/bin/sh\n# restore the snapshot and run the function: a process mapping the image as a VMM does\nexec rwload "$1" --seed 5 --reads 400 --writes 150\n' > restore.sh
chmod +x restore.sh
mkimage vm.mem --mib 8 --zero-pct 50 --seed 3 > /dev/null

# 1. From the image alone: every step runs, the intermediates stay, the JSON describes the split.
make vm.json > make1.out 2>&1 || fail "make vm.json: $(cat make1.out)"
for f in vm.ls vm.split vm.json; do [ -s $f ] || fail "$f missing after make (intermediates deleted?): $(cat make1.out)"; done
python3 -c 'import json,sys; j=json.load(open("vm.json")); assert j["image_pages"] == 2048 and j["rw_pages"] > 0 and j["ro_pages"] >= 0, j' ||
  fail "vm.json is not the split's description: $(cat vm.json)"
ls -A | grep -q '\.tmp\.' && fail "temporaries left: $(ls -A)"

# 2. A second make does nothing.
make -q vm.json || fail "make -q after make: exit $? (something still out of date)"
make vm.json > make2.out 2>&1 || fail "second make: $(cat make2.out)"
grep -q 'snap-' make2.out && fail "the second make ran a tool: $(cat make2.out)"

# 3. The loading set touched, not changed: the split reruns, its bytes are the same, so the split
#    and the JSON after it keep their inode and mtime.
s0=$(stamp vm.split) j0=$(stamp vm.json)
sleep 1.1; touch vm.ls
make vm.json > make3.out 2>&1 || fail "make after touching vm.ls: $(cat make3.out)"
grep -q 'snap-split' make3.out || fail "touching vm.ls did not rerun the split: $(cat make3.out)"
grep -q 'snap-stat' make3.out && fail "an unchanged split reran snap-stat: $(cat make3.out)"
[ "$(stamp vm.split)" = "$s0" ] || fail "the unchanged split was rewritten ($s0 -> $(stamp vm.split))"
[ "$(stamp vm.json)" = "$j0" ] || fail "vm.json was rewritten"

# 4. The image changed: everything after it reruns.
cp vm.json old.json
mkimage vm.mem --mib 8 --zero-pct 40 --seed 4 > /dev/null
make vm.json > make4.out 2>&1 || fail "make after a new image: $(cat make4.out)"
for t in snap-record snap-split snap-stat; do grep -q "$t" make4.out || fail "a new image did not rerun $t: $(cat make4.out)"; done
cmp -s vm.json old.json && fail "vm.json did not change with the image"
make -q vm.json || fail "make -q after the rebuild: exit $?"

# 5. A failing step: a damaged split. snap-stat exits 3; vm.json is not replaced by an error
#    and stays out of date (the next make tries again), no temporary is left.
cp vm.json good.json
truncate -s -4096 vm.split
make vm.json > make5.out 2>&1 && fail "make succeeded on a damaged split: $(cat make5.out)"
grep -q 'snap-stat: error: vm.split' make5.out || fail "no error line naming vm.split: $(cat make5.out)"
cmp -s vm.json good.json || fail "a failed snap-stat changed vm.json: $(cat vm.json)"
make -q vm.json && fail "after the failure make -q says vm.json is up to date"
ls -A | grep -q '\.tmp\.' && fail "temporaries left after the failure: $(ls -A)"
echo "ok: the snapkit(7) Makefile runs as printed: intermediates kept, no-op second make, unchanged outputs untouched, failures leave nothing"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo, the main job on the embedded default: install what is missing and build
# (scripts/setup.sh), then take the proving ground's `hello` function — a real Linux guest
# under QEMU+KVM, built from Debian packages and snapshotted once (both cached under build/) —
# and run the whole pipeline on it:
#   restore it while snap-record records its loading set → snap-split → snap-place →
#   restore it again with snap-restore --strategy tiered → snap-stat reports.
# Without /dev/kvm it says so and runs the same pipeline on a host workload instead.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
B=$root/build/bin
out=$root/build/demo
rm -rf "$out" && mkdir -p "$out"
say() { printf '\n== %s\n' "$*"; }

if [ -w /dev/kvm ] && command -v qemu-system-x86_64 >/dev/null; then
  say "guest: build (cached) and snapshot the hello function (cached; a first boot takes minutes here)"
  "$root/scripts/guest/build.sh"
  "$root/scripts/snapvm" snapshot --out "$root/build/vm" --functions hello
  snap=$root/build/vm/hello
  img=$snap/mem.img
  say "restore the snapshot with QEMU (cold page cache) while snap-record records it (pagemap)"
  "$root/scripts/snapvm" restore --snapshot "$snap" --cold --nohuge --json \
    --wrap "$B/snap-record -q --method pagemap --mem $img -o $out/hello.ls --" > "$out/restore.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("hello(%s) = %s (expected %s): resumed %.0f ms, result %.0f ms after restore start" % (r["input"], r["answer"], r["expected"], r["resumed_ms"], r["result_ms"]))' "$out/restore.json"
else
  say "no usable /dev/kvm or QEMU here: the same pipeline on a host process that maps an image privately"
  img=$out/demo.img
  "$B/mkimage" "$img" --mib 64 --zero-pct 70 --seed 1
  "$B/snap-record" -q --method pagemap --mem "$img" -o "$out/hello.ls" -- \
    "$B/rwload" "$img" --seed 2 --reads 2000 --writes 500
fi

say "the loading set"
"$B/snap-stat" "$out/hello.ls"
say "split: every page classified"
"$B/snap-split" --mem "$img" -o "$out/hello.split" "$out/hello.ls"
"$B/snap-stat" "$out/hello.split"
say "the image, one character per cell (. zero  - cold  r ro  W rw)"
"$B/snap-stat" --map --rows 8 "$out/hello.split"
"$B/snap-stat" -q --svg "$out/hello.svg" "$out/hello.split" > /dev/null
echo "the same as a picture (classes, offsets, the loading order): $out/hello.svg"
say "place: RW in DRAM, RO on a byte-addressable tier (tmpfs stands in for CXL), COLD on SSD"
cxl=/dev/shm/snapkit-demo-cxl
mkdir -p "$cxl" "$out/ssd" "$out/dram"
"$B/snap-place" "$out/hello.split" -o "$out/hello.placed" --staging "$out/dram" \
  --tier rw=dram --tier ro=dax:$cxl --tier cold=file:$out/ssd
if [ -n "${snap:-}" ]; then
  say "restore again, strategy tiered, through QEMU with the snapkit preload"
  "$root/scripts/snapvm" restore --snapshot "$snap" --json \
    --wrap "$B/snap-restore $out/hello.placed --strategy tiered --image $img -o $out/tiered.json --exec --" > "$out/restore-tiered.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("hello(%s) = %s, right: %s; result %.0f ms after restore start" % (r["input"], r["answer"], r["ok"], r["result_ms"]))' "$out/restore-tiered.json"
else
  say "restore again, strategy tiered: materialize the image from its tiers"
  "$B/snap-restore" "$out/hello.placed" --strategy tiered --materialize "$out/restored.img"
  cmp "$img" "$out/restored.img" && echo "restored image is identical to the original"
fi
say "done: artifacts in $out"

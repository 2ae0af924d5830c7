#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real VM: record one restore of each test function with three methods at once (mincore
# outermost, then bpf, then pagemap as QEMU's direct parent: one run, three loading sets),
# then split and check the result is plausible and the methods agree:
#   - the guest answers right; the split has RO and RW pages, ZERO > 50% of the image and
#     RO+RW far below the image size;
#   - bpf ⊆ mincore and bpf ⊆ pagemap (bpf never invents a page); bpf's order is strictly by
#     timestamp and no event was lost;
#   - bpf's written set equals pagemap's, except pages KVM writes on the VMM's behalf through
#     get_user_pages (kvmclock), which cause no fault a tracepoint sees: at most 2 (FACTS.md).
# usage: record_methods.sh [SNAPKIT_BIN]   (exit 77 = skipped)
source "$(dirname "$0")/lib.bash"
probe_vm
[ "$(id -u)" = 0 ] || skip "the bpf method needs root"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF for the bpf method"
B=$SNAPKIT_BIN
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work"
for fn in hello json pyaes; do
  ensure_snapshot "$fn"
  img=$VMDIR/$fn/mem.img
  d=$work/$fn && mkdir -p "$d"
  restore_check "$fn" --cold --nohuge --wrap \
    "$B/snap-record -q -m mincore --mem $img -o $d/mincore.ls -- $B/snap-record -q -m bpf --mem $img -o $d/bpf.ls -- $B/snap-record -q -m pagemap --mem $img -o $d/pagemap.ls --"
  for m in mincore bpf pagemap; do
    "$B/snap-split" -q --mem "$img" -o "$d/$m.split" "$d/$m.ls" || fail "$fn: split of the $m loading set"
    "$B/snap-stat" --json "$d/$m.split" > "$d/$m.split.json"
    "$B/snap-stat" --list "$d/$m.ls" > "$d/$m.list"
    "$B/snap-stat" --json "$d/$m.ls" > "$d/$m.ls.json"
  done
  python3 - "$fn" "$d" <<'PY' || fail "$fn: methods disagree or implausible split (see above)"
import json, sys
fn, d = sys.argv[1:3]
def pages(m, want=None):
    s = set()
    for line in open(f"{d}/{m}.list"):
        p, acc = line.split()[:2]
        if want is None or want in acc: s.add(int(p))
    return s
err = []
sp = json.load(open(f"{d}/pagemap.split.json"))
n = sp["image_pages"]
if not (sp["ro_pages"] > 0 and sp["rw_pages"] > 0): err.append(f"pagemap split lacks RO or RW: {sp['ro_pages']} ro, {sp['rw_pages']} rw")
if not sp["zero_pages"] > n / 2: err.append(f"ZERO share {sp['zero_pages']/n:.2f} <= 0.5")
if not sp["ro_pages"] + sp["rw_pages"] < n / 10: err.append(f"RO+RW = {sp['ro_pages']+sp['rw_pages']} pages, not << {n}")
mc = json.load(open(f"{d}/mincore.split.json"))
if not mc["ro_pages"] > 0 or mc["rw_pages"] != 0: err.append(f"mincore split: {mc['ro_pages']} ro, {mc['rw_pages']} rw")
b_all, m_all, p_all = pages("bpf"), pages("mincore"), pages("pagemap")
b_w, p_w = pages("bpf", "W"), pages("pagemap", "W")
if not b_all <= m_all: err.append(f"{len(b_all - m_all)} bpf pages not in the mincore set")
if not b_all <= p_all: err.append(f"{len(b_all - p_all)} bpf pages not in the pagemap set")
if not b_w <= p_w: err.append(f"bpf written pages not written per pagemap: {sorted(b_w - p_w)[:10]}")
if len(p_w - b_w) > 2: err.append(f"{len(p_w - b_w)} pages written per pagemap, not seen written by bpf: {sorted(p_w - b_w)[:10]}")
prev = -1
for i, line in enumerate(open(f"{d}/bpf.list")):
    p, acc, rank, t = line.split()
    if int(rank) != i: err.append(f"bpf rank {rank} at position {i}"); break
    if int(t) < prev: err.append(f"bpf order not by timestamp at position {i}"); break
    prev = int(t)
bj = json.load(open(f"{d}/bpf.ls.json"))
if bj["meta"].get("lost_events", 0) != 0: err.append(f"bpf lost {bj['meta']['lost_events']} events")
if err:
    print(f"FAIL {fn}: " + "; ".join(err)); sys.exit(1)
print(f"ok {fn}: image {n} pages, zero {sp['zero_pages']/n:.1%}, pagemap ro {sp['ro_pages']} rw {sp['rw_pages']} cold {sp['cold_pages']}; "
      f"touched: mincore {len(m_all)}, pagemap {len(p_all)}, bpf {len(b_all)}; written: pagemap {len(p_w)}, bpf {len(b_w)} "
      f"(kvm gup-only: {sorted(p_w - b_w)})")
PY
done

# Pictures of a real guest (issue 12): the hello split and a comparison of two of its loading
# sets render to PNG (snap-stat --svg; rsvg-convert from librsvg2-bin, a declared dependency).
d=$work/hello
command -v rsvg-convert > /dev/null || fail "rsvg-convert is missing (librsvg2-bin, scripts/deps.txt)"
"$B/snap-stat" -q --svg "$d/hello.svg" "$d/pagemap.split" > /dev/null || fail "hello: snap-stat --svg of the split"
"$B/snap-stat" -q --compare --svg "$d/hello-cmp.svg" "$d/mincore.ls" "$d/bpf.ls" > /dev/null ||
  fail "hello: snap-stat --compare --svg of two loading sets"
for f in hello hello-cmp; do
  rsvg-convert -o "$d/$f.png" "$d/$f.svg" || fail "hello: $f.svg does not render"
  [ "$(head -c 4 "$d/$f.png" | od -An -c | tr -d ' ')" = '211PNG' ] && [ "$(stat -c %s "$d/$f.png")" -gt 10000 ] ||
    fail "hello: $f.png is not a picture ($(stat -c %s "$d/$f.png") bytes)"
done
echo "ok hello: split and comparison pictures render ($d/hello.png, $d/hello-cmp.png)"

# bpf as the VMM's direct parent: its final page-table scan at QEMU's exit finds the pages
# KVM wrote through get_user_pages, so its written set equals the scan's (pagemap's) exactly.
for fn in hello json; do
  img=$VMDIR/$fn/mem.img
  d=$work/$fn
  restore_check "$fn" --cold --nohuge --wrap "$B/snap-record -q -m bpf --mem $img -o $d/bpf-direct.ls --"
  "$B/snap-stat" --json "$d/bpf-direct.ls" > "$d/bpf-direct.json"
  "$B/snap-stat" --json "$d/bpf.ls" > "$d/bpf.json"
  python3 - "$fn" "$d" <<'PY' || fail "$fn: bpf's written set is not exact"
import json, sys
fn, d = sys.argv[1:3]
r = json.load(open(f"{d}/bpf-direct.json")); b = r["meta"]["bpf"]
assert b["final_pagemap_scan"], "no final scan although bpf was QEMU's parent"
assert r["written_pages"] == b["final_scan_written_pages"], (r["written_pages"], b["final_scan_written_pages"])
assert b["final_scan_added_pages"] <= 2, b["final_scan_added_pages"]
nested = json.load(open(f"{d}/bpf.json"))["meta"]["bpf"]
assert not nested["final_pagemap_scan"], "nested bpf claims a final scan of a process that does not map the image"
print(f"ok {fn} (bpf direct): written {r['written_pages']} == page-table scan's {b['final_scan_written_pages']}; "
      f"found only by the scan: {b['final_scan_added_pages']}")
PY
done

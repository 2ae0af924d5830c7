#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-record --method bpf on rwload (root only: label priv). The written set equals the
# truth exactly; every recorded page was really touched (fault-around can hide reads, never
# invent them: recorded ⊆ true reads ∪ written); ranks follow timestamps; no event lost;
# children are followed (sh -c); without privileges it is exit 4 with a hint.
set -eu
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
mkdir -p "$work" && cd "$work"
for t in snap-record rwload mkimage; do
  [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "skipped: bpf needs root"; exit 77; }
[ -r /sys/kernel/btf/vmlinux ] || { echo "skipped: no kernel BTF (/sys/kernel/btf/vmlinux)"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

"$bin/mkimage" img --mib 64 --zero-pct 0 --seed 7
probe=0
"$bin/snap-record" -q --method bpf --mem img -o probe.ls -- true 2> probe.err || probe=$?
if [ "$probe" = 4 ]; then echo "skipped: $(head -1 probe.err)"; exit 77; fi
[ "$probe" = 0 ] || fail "probe run: exit $probe: $(cat probe.err)"

check() {  # check NAME: compares NAME.ls against NAME.truth and NAME.json
  "$bin/snap-stat" --list "$1.ls" > "$1.list"
  awk '$2 == "W" {print $1}' "$1.truth" | sort > "$1.tw"
  awk '$2 ~ /W/ {print $1}' "$1.list" | sort > "$1.rw"
  cmp -s "$1.tw" "$1.rw" || fail "$1: written set differs from the truth ($(wc -l < "$1.rw") recorded, $(wc -l < "$1.tw") true; missing $(comm -23 "$1.tw" "$1.rw" | wc -l), extra $(comm -13 "$1.tw" "$1.rw" | wc -l))"
  awk '{print $1}' "$1.truth" | sort > "$1.tall"
  awk '{print $1}' "$1.list" | sort > "$1.all"
  invented=$(comm -13 "$1.tall" "$1.all" | wc -l)
  [ "$invented" = 0 ] || fail "$1: $invented recorded pages were never touched"
  # rank = position, and timestamps never go backwards along the ranks
  sort -n -k3,3 "$1.list" | awk '$3 != NR - 1 {print "rank " $3 " at position " NR - 1; exit 1}
                                 NR > 1 && $4 < last {print "time goes back at rank " $3; exit 1}
                                 {last = $4}' > "$1.order" || fail "$1: $(cat "$1.order")"
  grep -q '"lost_events":0' "$1.ls.json" || fail "$1: events lost or not reported: $(cat "$1.ls.json")"
  grep -q '"has_time":true\|"timed":true' "$1.ls.json" || fail "$1: loading set without timestamps"
  reads=$(awk '$2 == "R"' "$1.truth" | wc -l)
  seen=$(awk '$2 == "R"' "$1.list" | wc -l)
  echo "ok: $1: $(wc -l < "$1.all") pages, $(wc -l < "$1.rw") written (exact), $seen of $reads read-only pages seen (fault-around hides the rest)"
}
meta() { "$bin/snap-stat" --json "$1.ls" > "$1.ls.json" 2>/dev/null || fail "$1: snap-stat failed"; }

# 1. Started command.
"$bin/snap-record" --method bpf --mem img -o run1.ls --json -- \
    "$bin/rwload" img --seed 11 --reads 3000 --writes 800 --truth run1.truth --pause-ms 100 > run1.json
grep -q '"method":"bpf"' run1.json || fail "run1: report: $(cat run1.json)"
meta run1
check run1

# 2. The workload is a grandchild (a wrapper script starting the VMM): followed through fork.
"$bin/snap-record" --method bpf --bpf-source user --mem img -o run2.ls -- \
    sh -c "'$bin/rwload' img --seed 12 --reads 1000 --writes 300 --truth run2.truth; true"
meta run2
check run2

# 3. exit_group() from a thread that is not the leader.
"$bin/snap-record" --method bpf --mem img -o run3.ls -- \
    "$bin/rwload" img --seed 13 --reads 1000 --writes 300 --truth run3.truth --exit-from-thread
meta run3
check run3

# 4. Without privileges: exit 4 and a hint line.
if command -v setpriv > /dev/null; then
  # Copies the unprivileged user can reach wherever the tree is (a clone in a 0700 directory).
  pub=$(mktemp -d) && chmod 755 "$pub" && cp "$bin/snap-record" img "$pub/" && chmod 644 "$pub/img"
  rc=0
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
      "$pub/snap-record" --method bpf --mem "$pub/img" -o /tmp/snapkit-bpf-$$.ls -- true 2> run4.err || rc=$?
  rm -f /tmp/snapkit-bpf-$$.ls; rm -rf "$pub"
  [ "$rc" = 4 ] || fail "run4: unprivileged exit $rc, expected 4: $(cat run4.err)"
  grep -q '^snap-record: hint: ' run4.err || fail "run4: no hint line: $(cat run4.err)"
  echo "ok: unprivileged: exit 4 with a hint"
fi

# 5. Every write of a process faults: the final page-table scan at exit finds nothing the
#    events missed, and the written set equals the scan's.
"$bin/snap-record" --method bpf --mem img -o run5.ls -- "$bin/rwload" img --seed 14 --reads 500 --writes 200
"$bin/snap-stat" --json run5.ls | python3 -c '
import json, sys
r = json.load(sys.stdin); b = r["meta"]["bpf"]
assert b["final_pagemap_scan"] and b["final_scan_added_pages"] == 0 and b["final_scan_upgraded_pages"] == 0, b
assert r["written_pages"] == b["final_scan_written_pages"] == 200, (r["written_pages"], b["final_scan_written_pages"])
print("ok: run5: final scan found no write the events missed; written", r["written_pages"])' || fail "run5: final scan disagrees"

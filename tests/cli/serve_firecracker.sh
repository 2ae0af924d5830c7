#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Firecracker's UFFD backend protocol end to end, without a VM: fcclient does what Firecracker
# does (anonymous private guest memory in two regions with a hole, userfaultfd registered
# MISSING, one JSON message + SCM_RIGHTS), fcserve answers with snap::uffd::serve_firecracker
# over a plain image. Every page must read back as the image; a ballooned range as zeros.
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:?}
mkdir -p "$work" && cd "$work" || exit 1
for t in fcclient fcserve; do [ -x "$bin/$t" ] || { echo "skipped: $t not built"; exit 77; }; done
fail=0
"$bin/fcclient" make-image img --mib 48 || exit 1

# run NAME SERVER-ARGS -- CLIENT-ARGS: both must exit 0; the server's JSON lands in NAME.json.
run() {
  local name=$1; shift
  local sargs=() cargs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
  shift
  cargs=("$@")
  rm -f "$name.sock"
  timeout 120 "$bin/fcserve" --socket "$work/$name.sock" --image img --json --accept-timeout-ms 30000 "${sargs[@]}" \
    >"$name.json" 2>"$name.err" &
  local spid=$!
  timeout 120 "$bin/fcclient" --socket "$work/$name.sock" --image img --json "${cargs[@]}" >"$name.client.json" 2>"$name.client.err"
  local crc=$?
  wait $spid
  local src=$?
  if [ $crc = 77 ]; then echo "skipped: $(cat "$name.client.err")"; exit 77; fi
  if [ $crc != 0 ] || [ $src != 0 ]; then
    echo "FAIL: $name: client exit $crc, server exit $src"; cat "$name.client.err" "$name.err" "$name.client.json"; fail=1; return 1
  fi
  echo "ok: $name: $(cat "$name.client.json")"
}

# jq-less JSON checks: check FILE PYTHON-EXPR (d = the parsed object)
check() {
  python3 -c "import json,sys; d=json.load(open('$1')); sys.exit(0 if ($2) else 1)" ||
    { echo "FAIL: $1: expected $2"; cat "$1"; fail=1; }
}

run default -- --threads 2 --balloon-mib 4 &&
  check default.json "d['peer_exited'] and len(d['regions'])==2 and d['stats']['remove_events']==1 and d['stats']['removed_bytes']==1024*4096 and d['stats']['faults']>0 and d['stats']['demand_zeroed_bytes']>0"
run legacy --granule-kib 4 -- --legacy-field --order seq --threads 1 &&
  check legacy.json "d['stats']['faults']>=12288 and d['stats']['eexist_ioctls']==0"
# Readahead: a sequential scan doubles the range per fault, 4 KiB up to 256 KiB: 48 MiB / 256 KiB
# = 192 faults plus each region's ramp and the balloon's refaults (226 seen), not 12288.
run readahead --granule-kib 4 --readahead-kib 256 -- --order seq --threads 1 &&
  check readahead.json "d['stats']['faults']<=300 and d['stats']['faults']>=12288*4//256"
run bigranule --granule-kib 2048 --no-zeropage -- --threads 2 &&
  check bigranule.json "d['stats']['demand_zeroed_bytes']>0 and d['stats']['faults']<=24+1+8"
run eager --eager-all -- --threads 2 &&
  check eager.json "d['eager_bytes']==12288*4096"
run record --record rec.ls -- --threads 1 --balloon-mib 0 &&
  check record.json "d['recorded_pages']==12288"
if [ -x "$bin/snap-stat" ] && [ -f rec.ls ]; then
  "$bin/snap-stat" --json rec.ls >rec.stat.json 2>rec.stat.err || { echo "FAIL: snap-stat rec.ls"; cat rec.stat.err; fail=1; }
  [ -s rec.stat.json ] && check rec.stat.json "d['method']=='uffd' and d['touched_pages']==12288 and d['written_pages']>0"
fi
# Record → split → serve from the split: the pipeline the restore strategies build on.
if [ -x "$bin/snap-split" ] && [ -f rec.ls ]; then
  if "$bin/snap-split" --mem img -o img.split rec.ls 2>split.err; then
    run fromsplit --split img.split -- --threads 2 &&
      check fromsplit.json "d['stats']['demand_zeroed_bytes']>0 and d['stats']['demand_copied_bytes']>0"
  else
    echo "FAIL: snap-split"; cat split.err; fail=1
  fi
fi
[ $fail = 0 ] && echo "ok: serve_firecracker"
exit $fail

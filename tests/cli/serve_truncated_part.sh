#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A part file truncated while snap-restore --serve serves it (issue 11): the server stops with
# an error naming the image offset (exit 1) or the part (exit 3) — never SIGBUS — and the
# peer (fcclient playing Firecracker) is killed, not left hanging, under every strategy.
set -u
BIN=${1:-$SNAPKIT_BIN}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
"$BIN/mkfixture" img ls 8192 7 > /dev/null || exit 1
"$BIN/snap-split" -q --mem img -o s.split ls || exit 1
mkdir -p ssd
for s in vanilla reap faasnap tiered; do
  rm -f ./*.rw ./*.ro ssd/*
  "$BIN/snap-place" s.split -o p.placed --tier rw=dram --tier ro=dram --tier cold=file:"$W/ssd" > /dev/null || exit 1
  timeout 60 "$BIN/snap-restore" p.placed --strategy $s --serve "$W/s.sock" --accept-timeout 30 > $s.json 2> $s.err &
  spid=$!
  for _ in $(seq 100); do [ -S "$W/s.sock" ] && break; sleep 0.05; done
  truncate -s 4096 ./*.rw ./*.ro ssd/*.cold
  timeout 60 "$BIN/fcclient" --socket "$W/s.sock" --image img --regions-mib 24,8 --threads 1 --order random > $s.client 2>&1
  crc=$?
  wait $spid
  src=$?
  case $src in
    1) grep -q "can no longer be read (a part file truncated" $s.err || fail "$s: exit 1: $(cat $s.err)" ;;
    3) grep -q "part file is truncated" $s.err || fail "$s: exit 3: $(cat $s.err)" ;;
    *) fail "$s: server exit $src (want 1 or 3, never a signal): $(cat $s.err)" ;;
  esac
  [ $crc = 137 ] || fail "$s: the peer was not killed (exit $crc: $(tail -2 $s.client))"
done
echo ok

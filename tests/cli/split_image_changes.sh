#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-split refuses an image that changes under it (a VM still running on it, a copy still
# being written): exit 1, no split left behind. And one that changed before it: exit 3.
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

# A large sparse image: the pass takes long enough (zero detection over 4 GiB) for a writer
# that keeps touching it to be seen, whatever the machine's speed.
truncate -s 4G big.img
"$bin/snap-record" -q --mem big.img -o big.ls -- true 2> /dev/null || fail "record"
for change in touch write grow; do
  rm -f big.split
  "$bin/snap-split" --mem big.img -o big.split big.ls 2> err.txt &
  split=$!
  n=0
  [ $change = grow ] && sleep 0.05
  while kill -0 $split 2> /dev/null; do
    case $change in
      touch) touch big.img ;;
      write) printf 'x' | dd of=big.img bs=1 seek=$((n * 4096 + 4096)) conv=notrunc status=none ;;
      grow) truncate -s $((4096 * 1048576 + (n + 1) * 4096)) big.img ;;
    esac
    n=$((n + 1))
    sleep 0.01
  done
  rc=0; wait $split || rc=$?
  # Exit 1 when the change came during the pass; a change that won the race to the start of
  # the pass makes the image another one than recorded (exit 3). Both leave nothing.
  if [ "$rc" = 1 ]; then
    grep -q 'big.img: the image changed while it was being split' err.txt || fail "$change: message: $(cat err.txt)"
  elif [ "$rc" = 3 ]; then
    grep -q 'big.ls: recorded against' err.txt || fail "$change: message: $(cat err.txt)"
  else
    fail "$change: snap-split exited $rc while the image changed: $(cat err.txt)"
  fi
  [ ! -e big.split ] || fail "$change: a split was left behind"
  ls -a | grep -q '\.tmp\.' && fail "$change: a temporary file was left behind"
  echo "ok: $change during the pass: exit $rc, nothing written ($n changes)"
  truncate -s 4G big.img
done

# Changed before the pass: the loading set's fingerprint no longer matches → exit 3.
"$bin/mkfixture" img run.ls 256 > /dev/null || fail "mkfixture"
printf 'changed' | dd of=img bs=1 seek=100 conv=notrunc status=none
rc=0; "$bin/snap-split" --mem img -o s.split run.ls 2> err.txt || rc=$?
[ "$rc" = 3 ] && grep -q 'recorded against another image' err.txt || fail "fingerprint mismatch: exit $rc: $(cat err.txt)"
[ ! -e s.split ] || fail "a split was left behind"
echo "ok: an image changed since recording: exit 3"
exit 0

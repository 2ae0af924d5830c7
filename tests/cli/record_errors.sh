#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-record's failures: exit codes (1 runtime, 2 usage, 3 bad image, 4 capability) and
# one-line messages that name the culprit.
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
mkdir -p "$work" && cd "$work" || exit 1
[ -x "$bin/snap-record" ] || { echo "skipped: snap-record not built"; exit 77; }
fail=0
expect() {  # expect CODE PATTERN -- ARGS…
  local code=$1 pattern=$2; shift 3
  local rc=0
  "$bin/snap-record" "$@" > out.txt 2> err.txt || rc=$?
  if [ "$rc" != "$code" ]; then
    echo "FAIL: snap-record $* → exit $rc, expected $code: $(head -c 300 err.txt)"; fail=1; return
  fi
  if ! grep -qE -- "$pattern" err.txt; then
    echo "FAIL: snap-record $* → stderr lacks /$pattern/: $(head -c 300 err.txt)"; fail=1; return
  fi
  echo "ok: exit $code: $*"
}
head -c 65536 /dev/zero > img
head -c 5000 /dev/zero > odd.img

expect 1 'error: missing\.img: No such file' -- --mem missing.img -o x.ls -- true
expect 2 'error: .*--bogus' -- --bogus --mem img -o x.ls -- true
expect 2 'error: no output given' -- --mem img -- true
expect 2 'error: --mem is required|--mem' -- -o x.ls -- true
expect 2 'error: nothing to record' -- --mem img -o x.ls
expect 2 'not both' -- --mem img -o x.ls --pid 1 -- true
expect 2 "unknown method 'nope'" -- --method nope --mem img -o x.ls -- true
expect 2 'both want stdout' -- --json --mem img -o - -- true
expect 2 'interval' -- --interval -5 --mem img -o x.ls -- true
expect 3 'odd\.img: image size 5000 is not a multiple' -- --mem odd.img -o x.ls -- true
expect 1 "cannot run 'no-such-command-xyz': No such file" -- --mem img -o x.ls -- no-such-command-xyz
expect 1 'no process 999999999' -- --pid 999999999 --mem img -o x.ls
[ ! -e x.ls ] || { echo "FAIL: an output was left behind by a failed run"; fail=1; }

# JSON mode: the error comes out on stdout as JSON too.
"$bin/snap-record" --json --mem missing.img -o x.ls -- true > out.txt 2>/dev/null
grep -q '"exit_code":1' out.txt || { echo "FAIL: --json error object: $(cat out.txt)"; fail=1; }

# Missing capability: an unprivileged user may not trace root's process → exit 4 with a hint.
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  sleep 5 &
  victim=$!
  # The unprivileged user must reach the tool and the image wherever the tree is (a clone in
  # a 0700 directory too): give it copies in a directory of its own.
  pub=$(mktemp -d) && chmod 755 "$pub" && cp "$bin/snap-record" img "$pub/" && chmod 644 "$pub/img"
  rc=0
  setpriv --reuid=65534 --regid=65534 --clear-groups "$pub/snap-record" --pid "$victim" --mem "$pub/img" \
      -o /tmp/snap-record-cap.$$.ls > out.txt 2> err.txt || rc=$?
  rm -rf "$pub"
  kill "$victim" 2>/dev/null; wait "$victim" 2>/dev/null
  if [ "$rc" = 4 ] && grep -q 'hint:' err.txt; then echo "ok: exit 4 with a hint when ptrace is denied"
  else echo "FAIL: ptrace denied → exit $rc: $(cat err.txt)"; fail=1; fi
  rm -f /tmp/snap-record-cap.$$.ls
else
  echo "note: capability case skipped (needs root and setpriv)"
fi
exit $fail

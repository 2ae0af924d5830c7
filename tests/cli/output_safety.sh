#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Outputs are private and durable: artifacts 0600 (less the umask), reports 0666 less the umask;
# a symlink at the destination is replaced, never followed; /dev/null is written, not replaced;
# a full disk (ENOSPC) is exit 1 with nothing left behind, for artifacts, reports and stdout.
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
mode() { stat -c %a "$1"; }

"$bin/mkfixture" img run.ls 512 > /dev/null || fail "mkfixture"

# 1. Modes under umask 077 and 022: artifacts (guest memory) are 0600 either way.
for um in 077 022 027; do
  d=um$um && mkdir -p $d
  (umask $um
   "$bin/snap-split" -q --mem img -o $d/s.split run.ls &&
   "$bin/snap-place" -q -o $d/p.placed --tiers file:$PWD/$d $d/s.split > /dev/null &&
   "$bin/snap-stat" -o $d/report.txt $d/s.split &&
   "$bin/snap-stat" --json -o $d/report.json run.ls &&
   "$bin/snap-split" -q --mem img -o $d/s2.split --report $d/split.json run.ls) || fail "umask $um: a tool failed"
  for f in $d/s.split $d/p.placed $d/*.rw $d/*.ro $d/*.cold; do
    [ -e "$f" ] || fail "umask $um: $f missing"
    [ "$(mode "$f")" = 600 ] || fail "umask $um: artifact $f has mode $(mode "$f"), expected 600"
  done
  want=$(printf '%o' $((0666 & ~8#$um)))
  for f in $d/report.txt $d/report.json $d/split.json; do
    [ "$(mode "$f")" = "$want" ] || fail "umask $um: report $f has mode $(mode "$f"), expected $want"
  done
  grep -q '"touched_pages"' $d/report.json || fail "umask $um: the JSON report is not there: $(cat $d/report.json)"
  grep -q '"digest"' $d/split.json || fail "umask $um: --report did not get the split's JSON"
done
(umask 077 && "$bin/snap-record" -q --mem img -o um077/r.ls -- true 2> /dev/null) || fail "snap-record failed"
[ "$(mode um077/r.ls)" = 600 ] || fail "loading set mode $(mode um077/r.ls)"
echo "ok: artifacts 0600 under umask 077/022/027, reports 0666 less the umask"

# 2. A symlink at the destination is replaced, not followed (artifact and report).
echo "precious" > victim
ln -sf victim link.split && ln -sf victim link.txt
"$bin/snap-split" -q --mem img -o link.split run.ls || fail "split onto a symlink"
"$bin/snap-stat" -o link.txt run.ls || fail "report onto a symlink"
[ "$(cat victim)" = precious ] || fail "the symlink's target was overwritten"
[ -f link.split ] && [ ! -L link.split ] || fail "link.split is still a symlink"
[ -f link.txt ] && [ ! -L link.txt ] || fail "link.txt is still a symlink"
# A dangling symlink into a directory the user cannot choose: still only the link is replaced.
ln -sf /nonexistent/dir/x dangling.txt
"$bin/snap-stat" -o dangling.txt run.ls || fail "report onto a dangling symlink"
[ -f dangling.txt ] && [ ! -L dangling.txt ] || fail "dangling.txt is still a symlink"
echo "ok: symlinks at the destination replaced, never followed"

# 3. A device at the destination is written to, not replaced; no temporary file left anywhere.
"$bin/snap-split" -q --mem img -o /dev/null run.ls || fail "-o /dev/null"
"$bin/snap-stat" -o /dev/null run.ls || fail "snap-stat -o /dev/null"
[ -c /dev/null ] || fail "/dev/null is no longer a character device"
ls -a | grep -q '\.tmp\.' && fail "temporary files left: $(ls -a | grep '\.tmp\.')"
echo "ok: /dev/null written, not replaced; no temporaries left"

# 4. A full disk: exit 1, one error line, no output, no temporary (needs root for a tmpfs).
if [ "$(id -u)" = 0 ] && mkdir -p full && mount -t tmpfs -o size=64k snapkit-full full 2> /dev/null; then
  trap 'umount "$work/full" 2>/dev/null' EXIT
  rc=0; "$bin/snap-split" -q --mem img -o full/s.split run.ls 2> err.txt || rc=$?
  [ "$rc" = 1 ] || fail "ENOSPC split: exit $rc: $(cat err.txt)"
  grep -q 'No space left' err.txt || fail "ENOSPC split: message: $(cat err.txt)"
  [ -z "$(ls -A full)" ] || fail "ENOSPC split left: $(ls -A full)"
  # Fill it up; then a report cannot be written either.
  head -c 1M /dev/zero > full/filler 2> /dev/null
  rc=0; "$bin/snap-stat" --list -o full/report.txt run.ls 2> err.txt || rc=$?
  [ "$rc" = 1 ] || fail "ENOSPC report: exit $rc: $(cat err.txt)"
  [ "$(ls -A full)" = filler ] || fail "ENOSPC report left: $(ls -A full)"
  rc=0; "$bin/snap-stat" --list run.ls > full/stdout.txt 2> err.txt || rc=$?
  [ "$rc" = 1 ] || fail "ENOSPC on stdout: exit $rc: $(cat err.txt)"
  rc=0; "$bin/snap-split" -q --mem img -o - run.ls > full/stdout.split 2> err.txt || rc=$?
  [ "$rc" = 1 ] || fail "ENOSPC on stdout (artifact): exit $rc: $(cat err.txt)"
  rc=0; "$bin/snap-record" -q --mem img -o full/r.ls -- true 2> err.txt || rc=$?
  [ "$rc" = 1 ] || fail "ENOSPC record: exit $rc: $(cat err.txt)"
  rm -f full/stdout.txt full/stdout.split
  [ "$(ls -A full)" = filler ] || fail "ENOSPC record left: $(ls -A full)"
  umount full && trap - EXIT
  echo "ok: a full disk is exit 1 and leaves nothing"
else
  echo "note: ENOSPC case skipped (needs root and a tmpfs mount)"
fi
exit 0

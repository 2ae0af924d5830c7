#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bounded by reality: artifacts that claim absurd sizes (with correct checksums), devices and
# endless streams end within 2 s, under 256 MiB of RSS, with the documented exit code.
# (The loading set claiming 2^46 bytes used to take 2 GiB of RSS; the 1 TiB manifest 79 s.)
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

"$bin/mkhostile" . || fail "mkhostile"
"$bin/mkfixture" img run.ls 64 > /dev/null || fail "mkfixture"
timer=/usr/bin/time
[ -x "$timer" ] || timer=
limit_s=2 limit_kib=$((256 * 1024))

bounded() {  # bounded CODE PATTERN CMD...: exit code, stderr pattern, time and RSS bounds
  local code=$1 pat=$2; shift 2
  local rc=0
  if [ -n "$timer" ]; then
    (timeout 20 "$timer" -o res.txt -f '%e %M' "$@" > out.txt 2> err.txt) || rc=$?
  else
    (ulimit -v $((limit_kib + 64 * 1024)); timeout $limit_s "$@" > out.txt 2> err.txt) || rc=$?
  fi
  [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code: $(head -c 300 err.txt)"
  [ -z "$pat" ] || grep -qE -- "$pat" err.txt || fail "'$*': stderr lacks /$pat/: $(head -c 300 err.txt)"
  if [ -n "$timer" ]; then
    read -r secs kib < <(tail -n 1 res.txt)
    awk -v s="$secs" -v l=$limit_s 'BEGIN { exit !(s < l) }' || fail "'$*' took $secs s"
    [ "$kib" -lt $limit_kib ] || fail "'$*' used $kib KiB"
    echo "ok: exit $code in ${secs}s, ${kib} KiB: $*"
  else
    echo "ok: exit $code: $*"
  fi
}

# Loading sets claiming a 64 TiB image: accepted (nothing is allocated for the claim), and
# refused by snap-split against a real image.
bounded 0 '' "$bin/snap-stat" huge.ls
bounded 0 '' "$bin/snap-stat" --json --map huge.ls
bounded 0 '' "$bin/snap-stat" resealed.ls
bounded 0 '' "$bin/snap-stat" huge.ls huge.ls
bounded 0 '' "$bin/snap-stat" --compare huge.ls huge.ls
bounded 0 '' "$bin/snap-stat" --svg huge.svg huge.ls
bounded 0 '' "$bin/snap-stat" --compare --svg huge2.svg huge.ls huge.ls
[ "$(stat -c %s huge.svg)" -lt 1000000 ] && [ "$(stat -c %s huge2.svg)" -lt 1000000 ] || fail "an SVG of a 64 TiB claim is not bounded"
bounded 3 'recorded against an image of 70368744177664 bytes' "$bin/snap-split" --mem img -o x.split huge.ls
bounded 3 'recorded against an image of' "$bin/snap-split" --mem img -o x.split resealed.ls
# A split and a manifest of a few KiB claiming a 1 TiB image of zeros: implausible, exit 3.
for a in huge.split huge.placed; do
  bounded 3 "$a: claims an image of 268435456 pages" "$bin/snap-stat" $a
  bounded 3 "$a: claims an image" "$bin/snap-stat" --verify --map $a
done
bounded 3 'huge.split: claims an image' "$bin/snap-place" --dry-run huge.split
bounded 3 'huge.placed: claims an image' "$bin/snap-restore" --materialize mat.img huge.placed
[ ! -e x.split ] && [ ! -e mat.img ] || fail "an output was left behind"

# Devices and endless streams.
bounded 3 '/dev/zero: is a character device' "$bin/snap-stat" /dev/zero
bounded 3 '/dev/urandom: is a character device' "$bin/snap-split" --mem img -o x.split /dev/urandom
bounded 3 '/dev/zero: is a character device' "$bin/snap-split" --mem /dev/zero -o x.split run.ls
bounded 3 '/dev/zero: is a character device' "$bin/snap-place" -o x.placed /dev/zero
bounded 3 '/dev/zero' "$bin/snap-record" --mem /dev/zero -o x.ls -- true
bounded 3 'not a snapkit artifact' sh -c "exec '$bin/snap-stat' - < /dev/zero"
bounded 3 'not a snapkit artifact' sh -c "exec '$bin/snap-stat' - < /dev/urandom"
# A stream whose header (checksum right) claims more than a stream may hold, then endless
# zeros; and one whose header checksum is wrong (it says nothing about the length).
bounded 3 'header claims 1099511627776 bytes, more than a stream may hold' \
  sh -c "cat claim.hdr /dev/zero | exec '$bin/snap-stat' -"
head -c 64 huge.ls > bad.hdr && printf '\377' | dd of=bad.hdr bs=1 seek=41 conv=notrunc status=none
bounded 3 'header checksum mismatch' sh -c "cat bad.hdr /dev/zero | exec '$bin/snap-stat' -"
# A valid loading set followed by endless bytes: read only as far as its header says.
bounded 3 'truncated or extended' sh -c "cat run.ls /dev/zero | exec '$bin/snap-stat' -"
mkfifo fifo
(cat run.ls /dev/zero > fifo 2> /dev/null &)
bounded 3 'fifo: truncated or extended' "$bin/snap-stat" fifo

# CLI values: negative counts, empty lists, malformed sizes are usage errors (exit 2).
bounded 2 'rss-trigger' "$bin/snap-record" --mem img -o x.ls --rss-trigger -5 -- true
bounded 2 'pid' "$bin/snap-record" --mem img -o x.ls --pid -5
bounded 2 'interval' "$bin/snap-record" --mem img -o x.ls --interval -1 -- true
bounded 2 'empty file name' "$bin/snap-split" --mem img -o x.split ''
bounded 2 'atleast' "$bin/snap-split" --mem img -o x.split --merge atleast:-1 run.ls
"$bin/snap-split" -q --mem img -o good.split run.ls || fail "split"
bounded 2 'empty list' "$bin/snap-place" -o x.placed --tiers '' good.split
bounded 2 'empty tier name' "$bin/snap-place" -o x.placed --tiers dram,,file:/tmp good.split
bounded 2 "invalid size '-1'" "$bin/snap-place" -o x.placed --budget dram=-1 good.split
bounded 2 "invalid size '12Q'" "$bin/snap-place" -o x.placed --budget dram=12Q good.split
bounded 2 'frame size' "$bin/snap-place" -o x.placed --compress --frame-size 1000 good.split
bounded 2 'not a regular file' "$bin/snap-place" -o x.placed --cost-file /dev/zero good.split
bounded 2 'width' "$bin/snap-stat" --map --width -3 run.ls
[ ! -e x.placed ] && [ ! -e x.ls ] || fail "an output was left behind"
exit 0

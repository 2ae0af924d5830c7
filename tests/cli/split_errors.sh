#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input gets a clear one-line error naming the file, the documented exit code, and never a
# half-written or overwritten output.
set -u
bin=${1:?bin dir}
work=${SNAPKIT_WORK:-$(mktemp -d)}
TD=${SNAPKIT_TESTDATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../testdata" && pwd)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
flip() {  # flip FILE OFFSET: invert one bit of one byte
  python3 -c 'import sys; f=open(sys.argv[1],"r+b"); o=int(sys.argv[2]); f.seek(o); b=f.read(1)[0]; f.seek(o); f.write(bytes([b^1]))' "$1" "$2"
}
expect() {  # expect CODE PATTERN CMD...: exit code and a stderr line matching PATTERN
  local code=$1 pat=$2; shift 2
  "$@" > out.txt 2> err.txt
  local got=$?
  [ "$got" = "$code" ] || fail "'$*' exited $got, expected $code; stderr: $(cat err.txt)"
  grep -qE "$pat" err.txt || fail "'$*': stderr lacks /$pat/: $(cat err.txt)"
  [ "$(grep -c 'error:' err.txt)" = 1 ] || fail "'$*': not exactly one error line: $(cat err.txt)"
}

# A valid image, loading set and split: the committed ones (testdata/README.md), copied; and
# another image of the same size.
cp "$TD/image.mem" img && cp "$TD/pagemap.ls" run.ls && cp "$TD/pagemap.split" good.split || fail "no fixtures in $TD"
"$bin/mkimage" other --mib 1 --zero-pct 50 --seed 2
size=$(stat -c %s run.ls)

head -c $((size - 7)) run.ls > trunc.ls
expect 3 "snap-split: error: trunc.ls: truncated" "$bin/snap-split" --mem img -o out.split trunc.ls
[ ! -e out.split ] || fail "an output was left behind after an error"
cp run.ls flip.ls && flip flip.ls $((size - 30))
expect 3 "flip.ls: .*checksum mismatch" "$bin/snap-split" --mem img -o out.split flip.ls
echo "not an artifact at all, just text" > text.ls
expect 3 "text.ls: not a snapkit artifact" "$bin/snap-split" --mem img -o out.split text.ls
expect 3 "run.ls: recorded against another image" "$bin/snap-split" --mem other -o out.split run.ls
"$bin/mkimage" small --mib 4 --seed 1
expect 3 "run.ls: recorded against an image of" "$bin/snap-split" --mem small -o out.split run.ls
head -c 5000 img > odd.img
expect 3 "odd.img: image size 5000 is not a multiple" "$bin/snap-split" --mem odd.img -o out.split run.ls
expect 3 "good.split: is a split artifact, expected a loading set" "$bin/snap-split" --mem img -o out.split good.split
expect 1 "missing.ls: No such file" "$bin/snap-split" --mem img -o out.split missing.ls
expect 2 "merge" "$bin/snap-split" --mem img --merge sometimes -o out.split run.ls
expect 2 "no output|output" "$bin/snap-split" --mem img run.ls
expect 2 "mem" "$bin/snap-split" -o out.split run.ls

# An existing output is left untouched by a failing run.
cp good.split keep.split
expect 3 "truncated" "$bin/snap-split" --mem img -o keep.split trunc.ls
cmp -s good.split keep.split || fail "a failing run changed an existing output"
[ -z "$(ls -A | grep '\.tmp\.')" ] || fail "temporary files left: $(ls -A | grep '\.tmp\.')"

# snap-stat: a truncated or corrupt split, and --verify finding a flipped page-data byte.
ssize=$(stat -c %s good.split)
head -c $((ssize / 2)) good.split > half.split
expect 3 "half.split: truncated" "$bin/snap-stat" half.split
cp good.split data.split && flip data.split $((ssize - 5000))
expect 3 "data.split: chunk PG..: checksum mismatch" "$bin/snap-stat" --verify data.split
expect 3 "good.split: .*pages differ from other" "$bin/snap-stat" --mem other good.split
"$bin/snap-stat" --json trunc.ls > out.json 2>/dev/null; [ $? = 3 ] || fail "snap-stat --json on a bad file: wrong exit"
grep -q '"error"' out.json || fail "snap-stat --json did not report the error as JSON"
# Quiet on a closed pipe.
"$bin/snap-stat" --list run.ls | head -1 > /dev/null
"$bin/snap-stat" --list run.ls 2>err.txt | head -1 >/dev/null; [ ! -s err.txt ] || fail "noise on EPIPE: $(cat err.txt)"
# Binary never goes to a terminal (when there is one to test with).
if command -v script >/dev/null; then
  script -qec "$bin/snap-split --mem img -o - run.ls" /dev/null > tty.txt 2>&1
  grep -q "refusing to write a binary artifact to a terminal" tty.txt || fail "wrote binary to a terminal: $(head -c 200 tty.txt)"
fi
echo "ok: errors name the file, exit codes as documented, outputs never half-written"

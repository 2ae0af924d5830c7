#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerate testdata/ (the small artifacts the tests, the fuzzer's seed corpus and the man page
# examples use) from the built tools, or with --check, regenerate into a scratch directory and
# compare byte for byte: exit 1 naming every stale file. testdata/README.md says what each file is.
#   scripts/testdata.sh [--check] [--bin DIR]
# DIR defaults to $SNAPKIT_BIN, else ${SNAPKIT_BUILD:-build}/bin. Everything is deterministic:
# the loading sets come from tests/workload/mkfixture (a recording of a live process never is).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${SNAPKIT_BIN:-${SNAPKIT_BUILD:-$root/build}/bin}
mode=write
usage() { echo "usage: scripts/testdata.sh [--check] [--bin DIR]"; }
while (($#)); do
  case $1 in
    --check) mode=check ;;
    --bin) bin=${2:?--bin needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
for t in mkfixture snap-split snap-place; do
  [ -x "$bin/$t" ] || { echo "testdata: error: $bin/$t not found" >&2
                        echo "testdata: hint: build first (scripts/setup.sh) or pass --bin DIR" >&2; exit 1; }
done

# The placed manifest records the absolute path of every part file (snapkit-formats(5)), so a
# manifest made inside a clone would name that clone. It is made in this fixed directory
# instead, whatever the clone's location, and its parts are copied beside it into testdata/placed/.
# Parsing it needs nothing else; opening its parts needs them copied back here (testdata/README.md).
placed_home=/tmp/snapkit-testdata/placed

generate() {  # generate DIR: every generated file of testdata/, into DIR
  local out=$1 m
  mkdir -p "$out/placed"
  # One 1 MiB image (256 pages: 60 % of the runs zero, runs of 1-6 pages, a tenth of the data
  # pages random, the rest text, so that git compresses it) and the same touches as each
  # recording method would write them. Seed 3 gives every class a few runs (174 zero, 28 ro,
  # 18 rw, 36 cold pages; one touched zero page).
  for m in mincore pagemap uffd bpf; do
    "$bin/mkfixture" "$out/image.mem" "$out/$m.ls" 256 3 --method "$m" --zero-pct 60 --random-pct 10 --max-run 6
  done
  "$bin/snap-split" -q --mem "$out/image.mem" -o "$out/pagemap.split" "$out/pagemap.ls"
  (
    flock 9  # one generator at a time owns $placed_home
    rm -rf "$placed_home"
    mkdir -p "$placed_home"
    # Default tiers (dram, file:<the output's directory>); COLD compressed in 16 KiB frames so
    # the manifest carries a seek table too.
    "$bin/snap-place" -q "$out/pagemap.split" -o "$placed_home/image.placed" --compress --frame-size 16K > /dev/null
    cp "$placed_home"/* "$out/placed/"
    rm -rf "$placed_home"
  ) 9> /tmp/snapkit-testdata.lock
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
generate "$scratch"
list() { (cd "$1" && find . -type f ! -name README.md | sed 's|^\./||' | LC_ALL=C sort); }

if [ "$mode" = write ]; then
  find "$root/testdata" -type f ! -name README.md -delete 2>/dev/null || true
  mkdir -p "$root/testdata"
  cp -r "$scratch"/. "$root/testdata/"
  echo "testdata: wrote $(list "$root/testdata" | wc -l) files, $(du -sh --exclude=README.md "$root/testdata" | cut -f1)"
  exit 0
fi

stale=0
while read -r f; do
  if [ ! -f "$root/testdata/$f" ]; then
    echo "testdata: stale: testdata/$f is missing"; stale=1
  elif ! cmp -s "$scratch/$f" "$root/testdata/$f"; then
    echo "testdata: stale: testdata/$f differs from what scripts/testdata.sh makes"; stale=1
  fi
done < <(list "$scratch")
while read -r f; do
  [ -f "$scratch/$f" ] || { echo "testdata: stale: testdata/$f is not made by scripts/testdata.sh"; stale=1; }
done < <(list "$root/testdata")
if [ "$stale" != 0 ]; then
  echo "testdata: hint: run scripts/testdata.sh and commit testdata/ (or revert the change that altered the bytes)"
  exit 1
fi
echo "ok: testdata/ is what scripts/testdata.sh makes ($(list "$scratch" | wc -l) files)"

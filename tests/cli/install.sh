#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The install: `cmake --install` into a scratch prefix puts the five tools, the preload, the man
# pages and pool-refresh.sh there and nothing else (no test helpers); the installed tools run a
# pipeline on testdata/, and snap-restore --exec loads the installed preload (not the build
# tree's: it says which, and a copy of the prefix without it refuses instead of falling back).
# Then `cpack -G DEB` builds the package from this build, its contents and control fields are
# checked, and, as root with no snapkit package installed, it is installed with apt-get, run
# from /usr/bin, found by man, and removed again (also on failure).
set -euo pipefail
BIN=${1:-$SNAPKIT_BIN}
ROOT=${SNAPKIT_ROOT:?}
BUILD=$(cd "$BIN/.." && pwd)
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }
for t in cpack dpkg-deb man; do
  command -v $t > /dev/null || fail "$t not installed (scripts/deps.txt)"
done
[ -f "$BIN/../lib/libsnaprestore.so" ] || fail "libsnaprestore.so not built"
tools="snap-place snap-record snap-restore snap-split snap-stat"
version=$(sed -n 's/^project(snapkit VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
[ -n "$version" ] || fail "no project version in CMakeLists.txt"

# --- cmake --install into a prefix
p=$W/prefix
cmake --install "$BUILD" --prefix "$p" > install.log || fail "cmake --install: $(tail -3 install.log)"
[ "$(ls "$p/bin" | tr '\n' ' ')" = "$tools " ] || fail "bin/ holds '$(ls "$p/bin" | tr '\n' ' ')', want the five tools"
for t in $tools; do
  [ -x "$p/bin/$t" ] || fail "$t not installed executable"
  out=$("$p/bin/$t" --version) || fail "installed $t --version: exit $?"
  [ "$out" = "$t (snapkit) $version" ] || fail "installed $t --version: '$out'"
done
mapfile -t libs < <(cd "$p" && find . -name 'libsnaprestore*')
[ "${#libs[@]}" = 1 ] && [[ ${libs[0]} == ./lib*/snapkit/libsnaprestore.so ]] || fail "preload installed as: ${libs[*]:-nothing}"
preload=$p/${libs[0]#./}
if find "$p" -type f \( -name 'maptest' -o -name 'mkfixture' -o -name 'replay' -o -name 'snap-unit' -o -name 'snap-fuzz*' \) | grep -q .; then
  fail "test helpers installed: $(find "$p" -type f -name 'maptest' -o -name 'snap-unit' -o -name 'snap-fuzz*')"
fi
for page in snap-record.1 snap-split.1 snap-place.1 snap-restore.1 snap-stat.1 snapkit-formats.5 snapkit.7; do
  s=${page##*.}
  cmp -s "$p/share/man/man$s/$page" "$ROOT/man/$page" || fail "man page $page not installed in share/man/man$s"
done
w=$(MANPATH="$p/share/man" man -w snap-split) || fail "MANPATH=$p/share/man man -w snap-split: exit $?"
[ "$w" = "$p/share/man/man1/snap-split.1" ] || fail "man -w snap-split: $w"
w=$(MANPATH="$p/share/man" man -w 5 snapkit-formats) && [ "$w" = "$p/share/man/man5/snapkit-formats.5" ] ||
  fail "man -w 5 snapkit-formats: $w"
MANPATH="$p/share/man" MANWIDTH=80 man snap-split 2> man.err | grep -q 'snap-split' || fail "man snap-split renders nothing: $(head -2 man.err)"
[ -x "$p/share/snapkit/scripts/pool-refresh.sh" ] || fail "pool-refresh.sh not installed in share/snapkit/scripts"
"$p/share/snapkit/scripts/pool-refresh.sh" --help | grep -q '^usage: pool-refresh.sh' || fail "installed pool-refresh.sh --help"
cmp -s "$p/share/doc/snapkit/LICENSE" "$ROOT/LICENSE" || fail "LICENSE not in share/doc/snapkit"

# --- the installed tools, from the prefix only (PATH without the build tree, no overrides)
unset SNAPRESTORE_PRELOAD
cp "$SNAPKIT_TESTDATA/image.mem" img
chmod 0600 img   # guest memory
mkdir -p ssd
run_pipeline() {  # $1 = prefix: split, place and restore --exec with its tools
  local path="$1/bin:/usr/bin:/bin"
  PATH=$path snap-split -q --mem img -o s.split "$SNAPKIT_TESTDATA/pagemap.ls" 2> restore.err &&
    PATH=$path snap-place -q s.split -o p.placed --tier rw=dram --tier ro=dram --tier cold=file:"$W/ssd" > /dev/null 2> restore.err &&
    PATH=$path snap-restore -v p.placed --strategy tiered --image img --json -o r.json \
      --exec -- "$BIN/maptest" img --writes 40 --seed 2 > map.out 2> restore.err
}
check_restore() {  # $1 = the preload it must have used
  grep -q '"wrong_pages": 0' map.out || fail "restore from the prefix: $(cat map.out)"
  grep -qF "with $1 (" restore.err || fail "snap-restore did not load $1: $(grep running restore.err || cat restore.err)"
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["preload"]; assert p["image_mapped"] and "error" not in p, p' r.json ||
    fail "the preload did not map the image: $(cat r.json)"
}
run_pipeline "$p" || fail "pipeline from $p: $(tail -2 restore.err)"
check_restore "$preload"
# The prefix moved elsewhere still works (found relative to the executable), and without its
# preload it refuses: no fallback to the build tree or anywhere else.
mv "$p" "$W/moved"
run_pipeline "$W/moved" || fail "pipeline from a moved prefix: $(tail -2 restore.err)"
check_restore "$W/moved/${libs[0]#./}"
rm "$W/moved/${libs[0]#./}"
set +e
run_pipeline "$W/moved"
rc=$?
set -e
[ $rc = 1 ] || fail "restore without the installed preload: exit $rc, want 1 ($(tail -2 restore.err))"
grep -q "error: libsnaprestore.so: preload library not found" restore.err || fail "no error naming the missing preload: $(cat restore.err)"
[ "$(grep -c . restore.err)" -le 3 ] || fail "more than an error and a hint: $(cat restore.err)"
rm -rf "$W/moved"

# --- the Debian package
mkdir pkg
(cd "$BUILD" && cpack -G DEB -B "$W/pkg" > "$W/cpack.log" 2>&1) || fail "cpack -G DEB: $(tail -5 cpack.log)"
debs=(pkg/snapkit_"$version"_*.deb)
[ "${#debs[@]}" = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made: $(ls pkg)"
deb=$W/${debs[0]}
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' > contents.txt
for f in /usr/bin/snap-split /usr/bin/snap-record /usr/bin/snap-place /usr/bin/snap-restore /usr/bin/snap-stat \
         /usr/lib/snapkit/libsnaprestore.so /usr/share/man/man1/snap-split.1 /usr/share/man/man5/snapkit-formats.5 \
         /usr/share/man/man7/snapkit.7 /usr/share/snapkit/scripts/pool-refresh.sh /usr/share/doc/snapkit/LICENSE; do
  grep -qx "$f" contents.txt || fail "$f not in the package: $(grep -v '/$' contents.txt | tr '\n' ' ')"
done
! grep -E '/(maptest|mkfixture|replay|snap-unit|snap-fuzz[^/]*)$' contents.txt || fail "test helpers in the package"
dpkg-deb -c "$deb" | grep ' \./usr/bin/snap-split$' | grep -q '^-rwxr-xr-x root/root' || fail "snap-split not 0755 root:root in the package"
dpkg-deb -x "$deb" unpacked
file unpacked/usr/bin/snap-split | grep -q ', stripped' || fail "snap-split not stripped in the package: $(file unpacked/usr/bin/snap-split)"
rm -rf unpacked
[ "$(dpkg-deb -f "$deb" Package)" = snapkit ] || fail "Package: $(dpkg-deb -f "$deb" Package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version: $(dpkg-deb -f "$deb" Version)"
[ "$(dpkg-deb -f "$deb" Section)" = utils ] || fail "Section: $(dpkg-deb -f "$deb" Section)"
[ -n "$(dpkg-deb -f "$deb" Maintainer)" ] && [ -n "$(dpkg-deb -f "$deb" Description)" ] || fail "no Maintainer or Description"
depends=$(dpkg-deb -f "$deb" Depends)
# dpkg-shlibdeps' result: the libraries the tools link, with versions; and flock's package
for d in libc6 libstdc++6 libzstd1 libxxhash0 libhiredis0.14 util-linux; do
  [[ ", $depends," == *", $d "* || ", $depends," == *", $d,"* ]] || fail "Depends lacks $d: $depends"
done
[[ $depends == *"libc6 (>="* ]] || fail "Depends has no versioned libc6 (dpkg-shlibdeps not run?): $depends"
echo "ok: prefix install and ${deb##*/} ($(stat -c %s "$deb") bytes; Depends: $depends)"

# --- apt-get install ./snapkit_*.deb, as root, when no snapkit package is installed
if [ "$(id -u)" != 0 ]; then
  echo "skipped: installing the package needs root"
  exit 0
fi
if dpkg-query -W -f='${Status}' snapkit 2> /dev/null | grep -q 'install ok installed'; then
  echo "skipped: a snapkit package ($(dpkg-query -W -f='${Version}' snapkit)) is already installed; not replacing it"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o DPkg::Lock::Timeout=120)
remove_pkg() {
  apt-get remove --purge "${apt_opts[@]}" snapkit > "$W/apt-remove.log" 2>&1 || echo "FAIL: apt-get remove snapkit: $(tail -2 "$W/apt-remove.log")" >&2
}
trap remove_pkg EXIT
trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP   # ctest's timeout too: remove it
apt-get install "${apt_opts[@]}" --no-install-recommends "$deb" > apt-install.log 2>&1 || fail "apt-get install ./${deb##*/}: $(tail -3 apt-install.log)"
[ "$(/usr/bin/snap-split --version)" = "snap-split (snapkit) $version" ] || fail "/usr/bin/snap-split --version: $(/usr/bin/snap-split --version)"
w=$(env -u MANPATH man -w snap-split) || fail "man -w snap-split after the install: exit $?"
[[ $w == /usr/share/man/man1/snap-split.1* ]] || fail "man -w snap-split: $w"
run_pipeline /usr || fail "pipeline from /usr: $(tail -2 restore.err)"
check_restore /usr/lib/snapkit/libsnaprestore.so
trap - EXIT
remove_pkg
! dpkg-query -W -f='${Status}' snapkit 2> /dev/null | grep -q 'install ok installed' || fail "snapkit still installed after apt-get remove"
[ ! -e /usr/bin/snap-split ] || fail "/usr/bin/snap-split left behind"
echo "ok: apt-get install ./${deb##*/}: /usr/bin/snap-split, man -w $w, restore --exec with /usr/lib/snapkit; removed"

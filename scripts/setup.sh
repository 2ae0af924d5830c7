#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what snapkit needs (Debian packages only, via apt-get, when missing) and build it:
# the five tools land in build/bin/. Safe to run again: installs nothing twice, rebuilds only
# what changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SNAPKIT_BUILD:-$root/build}

pkgs=$(cat "$root/scripts/deps.txt" "$root"/scripts/guest/deps.txt "$root"/common/*/deps.txt 2>/dev/null |
       sed 's/#.*//' | tr -s ' \n' '\n' | sort -u)
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${SNAPKIT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"${SNAPKIT_JOBS:-$(nproc)}"

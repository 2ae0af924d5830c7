#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Man pages stay true to --help: every long option a tool's --help lists is documented in the
# OPTIONS section of its man page, and every long option documented there exists in --help.
set -u
bin=${1:?bin dir}
root=${SNAPKIT_ROOT:?}
fail=0 checked=0
for tool in snap-record snap-split snap-stat snap-place snap-restore; do
  [ -x "$bin/$tool" ] || continue
  page="$root/man/$tool.1"
  if [ ! -f "$page" ]; then echo "FAIL: $tool has no man page ($page)"; fail=1; continue; fi
  help_opts=$("$bin/$tool" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
  man_opts=$(sed -n '/^\.SH OPTIONS/,/^\.SH [A-Z]/p' "$page" | sed 's/\\-/-/g' |
             grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
  for o in $help_opts; do
    grep -qxF -- "$o" <<<"$man_opts" || { echo "FAIL: $tool --help has $o, $page OPTIONS does not"; fail=1; }
  done
  for o in $man_opts; do
    grep -qxF -- "$o" <<<"$help_opts" || { echo "FAIL: $page documents $o, $tool --help does not have it"; fail=1; }
  done
  # --version names the tool and the package ("snap-split (snapkit) 0.1.0").
  v=$("$bin/$tool" --version)
  [[ "$v" == "$tool (snapkit) "[0-9]* ]] || { echo "FAIL: $tool --version says '$v'"; fail=1; }
  checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "FAIL: no tool found in $bin"; exit 1; }
[ "$fail" = 0 ] && echo "ok: $checked man pages agree with --help"
exit $fail

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Give every source file an SPDX license line (LICENSE: Apache-2.0) as its first line, after a
# shebang if it has one: `// SPDX-License-Identifier: Apache-2.0` in C and C++, `# ...` in shell,
# Python and CMake. Idempotent: a file that already names a license in its first three lines is
# left alone (common/bpf/record.bpf.c is GPL-2.0, as the kernel's helpers require; the header
# it shares with snap-record, common/bpf/record.h, is GPL-2.0-only OR Apache-2.0).
#   scripts/spdx.sh [--check] [PATH...]
# PATHs are files or directories (default: every file git tracks); --check changes nothing and
# exits 1 listing the files that lack the line. Kernel patches, man pages and data are skipped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
id="SPDX-License-Identifier: Apache-2.0"
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }

files() {
  if (($#)); then
    for p in "$@"; do
      if [ -d "$p" ]; then find "$p" -type f; else echo "$p"; fi
    done
  else
    git -C "$root" ls-files | sed "s|^|$root/|"
  fi
}

style() {  # the comment leader for a file, or nothing for a file that takes no header
  case $1 in
    *testdata/*|*guest/kernel/*|*.patch) ;;
    # Shared with the GPL-2.0 BPF program, which includes it: dual-licensed
    # (GPL-2.0-only OR Apache-2.0), its own line says so; never given the plain one.
    *common/bpf/record.h) ;;
    *.c|*.h|*.cc|*.cpp|*.hpp) echo "//" ;;
    *.sh|*.bash|*.py|*/CMakeLists.txt|CMakeLists.txt|*.cmake) echo "#" ;;
    *) if head -c 64 "$1" 2>/dev/null | grep -qE '^#!.*(ba)?sh|^#!.*python'; then echo "#"; fi ;;
  esac
}

missing=0 changed=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  lead=$(style "$f")
  [ -n "$lead" ] || continue
  head -n 3 "$f" | grep -q 'SPDX-License-Identifier:' && continue
  missing=$((missing + 1))
  if ((check)); then echo "spdx: ${f#"$root"/}: no SPDX-License-Identifier line"; continue; fi
  tmp=$(mktemp "$f.spdx.XXXXXX")
  if head -n 1 "$f" | grep -q '^#!'; then
    { head -n 1 "$f"; echo "$lead $id"; tail -n +2 "$f"; } > "$tmp"
  else
    { echo "$lead $id"; cat "$f"; } > "$tmp"
  fi
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
  changed=$((changed + 1))
done < <(files "$@")

if ((check)); then
  ((missing == 0)) || exit 1
  echo "ok: every source file names its license"
else
  echo "spdx: added the line to $changed files"
fi

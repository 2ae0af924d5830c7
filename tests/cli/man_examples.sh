#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The man page examples that use the source tree's testdata/ run as written: every command
# line of an EXAMPLES section naming testdata/ exits 0, from a scratch directory in which
# testdata is the committed one (outputs land in the scratch directory) and scripts/ the source
# tree's. Examples that place into a local pool (redis://127.0.0.1:6379/...) run against a
# redis-server this test starts on a free port (tests/lib/redis.bash), the port substituted.
set -u
bin=${1:?bin dir}
root=${SNAPKIT_ROOT:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
ln -s "${SNAPKIT_TESTDATA:-$root/testdata}" testdata
ln -s "$root/scripts" scripts
export PATH="$bin:$PATH"
fail=0 ran=0
redis_port=
if grep -lE 'testdata/.*redis://127\.0\.0\.1:6379|redis://127\.0\.0\.1:6379.*testdata/' "$root"/man/*.[157] > /dev/null 2>&1; then
  source "$root/tests/lib/redis.bash"
  redis_available || { echo "FAIL: man page examples use a pool and redis-server is not installed"; exit 1; }
  redis_start_plain redis_port || { echo "FAIL: cannot start redis-server"; exit 1; }
fi
for page in "$root"/man/*.[157]; do
  # Lines of .nf/.fi blocks in EXAMPLES that name testdata/, man escapes undone.
  while IFS= read -r cmd; do
    [ -n "$cmd" ] || continue
    ran=$((ran + 1))
    [ -n "$redis_port" ] && cmd=${cmd//127.0.0.1:6379/127.0.0.1:$redis_port}
    if ! bash -c "set -o pipefail; $cmd" < /dev/null > out.txt 2> err.txt; then
      echo "FAIL: ${page##*/}: '$cmd' failed: $(head -3 err.txt)"; fail=1
    fi
  done < <(sed -n '/^\.SH EXAMPLES/,/^\.SH [A-Z]/p' "$page" |
           awk '/^\.nf/ {on=1; next} /^\.fi/ {on=0} on && /testdata\// {print}' |
           sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/^ *//')
done
[ "$ran" -ge 5 ] || { echo "FAIL: only $ran man page examples use testdata/"; exit 1; }
[ "$fail" = 0 ] && echo "ok: $ran man page examples on testdata/ run as written"
exit $fail

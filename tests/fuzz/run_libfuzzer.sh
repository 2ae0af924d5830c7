#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest label `fuzz`: build the libFuzzer targets with clang in a build of their own (the
# library instrumented too: -fsanitize=fuzzer-no-link) and run each for a bounded time,
# seeded with the deterministic harness's seeds. Fails on a crash, a leak, a timeout (2 s per
# input), or an input allocating more than 256 MiB at once. Skips (77) without clang.
#   SNAPKIT_FUZZ_SECONDS (default 30) per target; SNAPKIT_JOBS (default 2) build jobs.
set -u
root=${SNAPKIT_ROOT:?}
build=${SNAPKIT_FUZZ_BUILD:?}
seeder=${SNAPKIT_SEEDER:?}
secs=${SNAPKIT_FUZZ_SECONDS:-30}
if ! command -v clang > /dev/null || ! command -v clang++ > /dev/null; then
  echo "skipped: clang is not installed (Debian package clang)"; exit 77
fi
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPKIT_LIBFUZZER=ON > "$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; echo "FAIL: configure"; exit 1; }
targets=(loadset split placed regions)
bins=()
for t in "${targets[@]}"; do bins+=("snap-fuzz-$t-libfuzzer"); done
cmake --build "$build" -j"${SNAPKIT_JOBS:-2}" --target "${bins[@]}" > "$build.build.log" 2>&1 ||
  { tail -n 30 "$build.build.log"; echo "FAIL: build"; exit 1; }
work=$build/runs
rm -rf "$work" && mkdir -p "$work/seeds" || exit 1
"$seeder" --write-seeds "$work/seeds" || { echo "FAIL: seeds"; exit 1; }
fail=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus"
  if [ "$t" = regions ]; then  # the handshake's JSON, not an artifact
    printf '%s' '[{"base_host_virt_addr":1073741824,"size":25165824,"offset":0,"page_size":4096}]' > "$work/$t/corpus/one"
    printf '%s' '[{"base_host_virt_addr":4194304,"size":4194304,"offset":0,"page_size_kib":2048},{"base_host_virt_addr":8388608,"size":4194304,"offset":4194304,"page_size_kib":2048}]' > "$work/$t/corpus/two"
  else
    cp "$work"/seeds/* "$work/$t/corpus/"
  fi
  # -malloc_limit_mb bounds what one input may allocate; the process RSS limit is looser
  # because ASan's quarantine and libFuzzer's corpus grow over a run (not one input's doing).
  (cd "$work/$t" && ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=32 "$build/bin/snap-fuzz-$t-libfuzzer" corpus \
      -max_total_time="$secs" -timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=256 -max_len=131072 \
      -print_final_stats=1 -artifact_prefix="$work/$t/" > log.txt 2>&1)
  rc=$?
  edges=$(grep -o 'cov: [0-9]*' "$work/$t/log.txt" | tail -n 1)
  modules=$(grep -m1 'INFO: Loaded' "$work/$t/log.txt")
  if [ $rc != 0 ]; then
    echo "FAIL: $t: libFuzzer exit $rc; $(grep -m3 -E 'ERROR|SUMMARY|crash-|leak-|timeout-|oom-' "$work/$t/log.txt")"
    fail=1
  else
    echo "ok: $t: ${secs}s, $edges ($modules)"
  fi
done
exit $fail

#!/usr/bin/env bash
# ctest label `fuzz`: build the libFuzzer targets with clang in a build of their own (the
# library instrumented too: -fsanitize=fuzzer-no-link) and run each for a bounded time,
# seeded with the deterministic harness's seeds. Fails on a crash, a leak, a timeout (2 s per
# input), or an input needing more than 256 MiB. Skips (77) without clang.
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
targets=(loadset split placed)
cmake --build "$build" -j"${SNAPKIT_JOBS:-2}" --target "${targets[@]/#/snap-fuzz-}" \
      "${targets[@]/%/-libfuzzer}" > /dev/null 2> "$build.build.log" || true
for t in "${targets[@]}"; do
  [ -x "$build/bin/snap-fuzz-$t-libfuzzer" ] ||
    cmake --build "$build" -j"${SNAPKIT_JOBS:-2}" --target "snap-fuzz-$t-libfuzzer" || { echo "FAIL: build $t"; exit 1; }
done
work=$build/runs
rm -rf "$work" && mkdir -p "$work/seeds" || exit 1
"$seeder" --write-seeds "$work/seeds" || { echo "FAIL: seeds"; exit 1; }
fail=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" && cp "$work"/seeds/* "$work/$t/corpus/"
  (cd "$work/$t" && ASAN_OPTIONS=detect_leaks=1 "$build/bin/snap-fuzz-$t-libfuzzer" corpus \
      -max_total_time="$secs" -timeout=2 -rss_limit_mb=256 -malloc_limit_mb=256 -max_len=65536 \
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

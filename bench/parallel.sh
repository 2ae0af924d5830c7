#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/parallel.sh: does this machine run two short CPU bursts in parallel when one CPU was
# idle? A busy loop alone, then the same loop in two processes forked at once from an idle
# start (no spinning to keep the other CPU awake); prints each one's time from the fork to its
# end and the ratio (the later end / alone: 1.0 = two CPUs, 2.0 = one). On these PVM hosts
# bursts of ~10 ms came out near 2.0: an idle vCPU takes milliseconds to run what is woken on
# it (the host packs vCPUs), so a restore's eager threads, and snap-restore beside its VMM,
# run one after another. Compiles a small C loop with cc.
#   bench/parallel.sh [MILLISECONDS...]   (default 2 12 85)
set -euo pipefail
[ $# -gt 0 ] || set -- 2 12 85
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cat > "$d/p.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static double burn(long n) { volatile long x = 0; double t = ms(); for (long i = 0; i < n; ++i) x += i; return ms() - t; }
int main(int argc, char** argv) {
    double want = atof(argv[1]);
    long n = 1000000; double t;
    while ((t = burn(n)) < want / 4) n *= 2;  /* calibrate: n iterations take about `want` ms */
    n = (long)(n * want / t);
    double alone = burn(n), r[2];
    double* shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    usleep(50000);  /* let the CPUs go idle */
    double t0 = ms();
    for (int k = 0; k < 2; ++k)
        if (fork() == 0) { burn(n); shared[k] = ms() - t0; _exit(0); }
    while (wait(NULL) > 0) {}
    r[0] = shared[0]; r[1] = shared[1];
    printf("%-8.0f %9.1f %9.1f %9.1f %6.2f\n", want, alone, r[0], r[1], (r[0] > r[1] ? r[0] : r[1]) / alone);
    return 0;
}
C
cc -O1 -o "$d/p" "$d/p.c"
printf '%-8s %9s %9s %9s %6s\n' want_ms alone_ms first_ms second_ms ratio
for m in "$@"; do "$d/p" "$m"; done

#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/fresh_pages.sh: what a private 4 KiB page costs here, made each way a restore can make
# it, per page (median of the repetitions): a copy-on-write write fault over a private mapping
# of a tmpfs file, MADV_POPULATE_WRITE over the same, UFFDIO_COPY from a tmpfs source in
# ioctls of 64 and of 1 page, memcpy into fresh anonymous memory, and memcpy into memory
# already resident (the copy alone). The spread between the last and the others is the fresh
# page (allocation, zeroing, page table, and on these hosts the hypervisor's side). Compiles a
# small C program with cc; needs /dev/shm and userfaultfd (root, or vm.unprivileged_userfaultfd).
#   bench/fresh_pages.sh [PAGES [REPEATS]]   (default 2162 5: read-list's mispredicted RW set)
set -euo pipefail
pages=${1:-2162}
reps=${2:-5}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cat > "$d/f.c" <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define PS 4096UL
static double us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void* a, const void* b) { double x = *(const double*)a, y = *(const double*)b; return (x > y) - (x < y); }
static void die(const char* what) { perror(what); exit(1); }
static size_t n;
static int src_fd;
static char* src;
static char* map_private(void) {
    char* a = mmap(NULL, n * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, src_fd, 0);
    if (a == MAP_FAILED) die("mmap");
    return a;
}
static char* map_anon(void) {
    char* a = mmap(NULL, n * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) die("mmap");
    return a;
}
static double cow(void) {
    char* a = map_private();
    double t = us();
    for (size_t i = 0; i < n; ++i) a[i * PS] = 1;
    t = us() - t;
    munmap(a, n * PS);
    return t;
}
static double populate_write(void) {
    char* a = map_private();
    double t = us();
    if (madvise(a, n * PS, 23 /* MADV_POPULATE_WRITE */)) die("MADV_POPULATE_WRITE");
    t = us() - t;
    munmap(a, n * PS);
    return t;
}
static double uffd_copy(size_t batch) {
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (u < 0) die("userfaultfd");
    struct uffdio_api api = {.api = UFFD_API};
    if (ioctl(u, UFFDIO_API, &api)) die("UFFDIO_API");
    char* a = map_anon();
    struct uffdio_register r = {.range = {(unsigned long)a, n * PS}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(u, UFFDIO_REGISTER, &r)) die("UFFDIO_REGISTER");
    double t = us();
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        struct uffdio_copy c = {.dst = (unsigned long)a + i * PS, .src = (unsigned long)src + i * PS, .len = k * PS,
                                .mode = UFFDIO_COPY_MODE_DONTWAKE};
        if (ioctl(u, UFFDIO_COPY, &c)) die("UFFDIO_COPY");
    }
    t = us() - t;
    munmap(a, n * PS);
    close(u);
    return t;
}
static double copy_fresh(void) {
    char* a = map_anon();
    double t = us();
    memcpy(a, src, n * PS);
    t = us() - t;
    munmap(a, n * PS);
    return t;
}
static double copy_resident(void) {
    char* a = map_anon();
    memset(a, 0, n * PS);
    double t = us();
    memcpy(a, src, n * PS);
    t = us() - t;
    munmap(a, n * PS);
    return t;
}
int main(int argc, char** argv) {
    n = strtoul(argv[1], NULL, 10);
    int reps = atoi(argv[2]);
    char path[] = "/dev/shm/snapkit-fresh-XXXXXX";
    src_fd = mkstemp(path);
    if (src_fd < 0) die("mkstemp");
    unlink(path);
    if (ftruncate(src_fd, (off_t)(n * PS))) die("ftruncate");
    src = mmap(NULL, n * PS, PROT_READ | PROT_WRITE, MAP_SHARED, src_fd, 0);
    if (src == MAP_FAILED) die("mmap");
    memset(src, 7, n * PS);
    const char* names[] = {"copy-on-write write fault", "MADV_POPULATE_WRITE (private file)", "UFFDIO_COPY, 64 pages an ioctl",
                           "UFFDIO_COPY, 1 page an ioctl", "memcpy into fresh anonymous", "memcpy into resident (copy alone)"};
    double* t = calloc((size_t)reps, sizeof *t);
    printf("%zu pages, median of %d\n", n, reps);
    for (int m = 0; m < 6; ++m) {
        for (int r = 0; r < reps; ++r)
            t[r] = m == 0 ? cow() : m == 1 ? populate_write() : m == 2 ? uffd_copy(64) : m == 3 ? uffd_copy(1)
                 : m == 4 ? copy_fresh() : copy_resident();
        qsort(t, (size_t)reps, sizeof *t, cmp);
        printf("%-36s %6.2f us/page\n", names[m], t[reps / 2] / (double)n);
    }
    return 0;
}
C
cc -O2 -o "$d/f" "$d/f.c"
"$d/f" "$pages" "$reps"

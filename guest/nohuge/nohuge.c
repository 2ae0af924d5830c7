// SPDX-License-Identifier: Apache-2.0
/*
 * libnohuge.so: LD_PRELOAD shim for a VMM (QEMU) that drops MADV_HUGEPAGE
 * advice on file-backed mappings.
 *
 * QEMU advises all guest RAM MADV_HUGEPAGE.  When guest RAM is a private
 * mapping of a snapshot image, the kernel then reads the image in 2 MiB
 * folios on every page-cache miss, so page-cache based recording (mincore)
 * and pagemap see ~30x more pages than the guest touched.  Anonymous
 * mappings keep the advice.  Set NOHUGE_ALL=1 to drop it everywhere and
 * NOHUGE_VERBOSE=1 to log each dropped call on stderr.
 *
 * In its place the file mapping gets MADV_RANDOM (NOHUGE_RANDOM=0 to skip):
 * no readahead around a page-cache miss, so the image's page-cache
 * residency after a cold restore is what the guest touched (plus
 * fault-around of pages already cached), without lowering the block
 * device's read_ahead_kb for the whole machine.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int real_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

/* Is [addr, addr+len) inside a mapping with a backing inode?  Reads
 * /proc/self/maps with plain syscalls: no allocation, safe early in QEMU. */
static int file_backed(uintptr_t addr)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	static char buf[1 << 16];
	size_t have = 0;
	int found = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = 0;
			/* start-end perms offset dev inode path */
			unsigned long start, end, inode;
			if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &start, &end, &inode) == 3 &&
			    addr >= start && addr < end) {
				found = inode != 0;
				close(fd);
				return found;
			}
			line = nl + 1;
		}
		have = (size_t)(buf + have - line);
		memmove(buf, line, have);
	}
	close(fd);
	return found;
}

int madvise(void *addr, size_t len, int advice)
{
	if (advice == MADV_HUGEPAGE) {
		const char *all = getenv("NOHUGE_ALL");
		if ((all && *all == '1') || file_backed((uintptr_t)addr)) {
			const char *v = getenv("NOHUGE_VERBOSE");
			if (v && *v == '1') {
				char msg[96];
				int n = snprintf(msg, sizeof msg, "nohuge: dropped MADV_HUGEPAGE %p+%zu\n", addr, len);
				if (n > 0) (void)!write(2, msg, (size_t)n);
			}
			const char *r = getenv("NOHUGE_RANDOM");
			if (!(r && *r == '0'))
				real_madvise(addr, len, MADV_RANDOM);
			return 0;
		}
	}
	return real_madvise(addr, len, advice);
}

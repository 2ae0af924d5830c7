// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* The ABI between record.bpf.c (kernel side) and snapbpf (user side) of
 * `snap-record --method bpf`: the event record that crosses the ring buffer, the
 * counters in the per-CPU stats array and the configuration constants. C, not C++:
 * it is included by the BPF program (with vmlinux.h types) and by the loader. */
#ifndef SNAPKIT_BPF_RECORD_H
#define SNAPKIT_BPF_RECORD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Where an event comes from; also part of the in-kernel dedup key. */
enum snapbpf_source {
	/* A user- or kernel-mode page fault of a traced process on a mapping of the
	 * image file, resolved in the kernel: page = file offset / 4096. */
	SNAPBPF_SRC_FILE = 0,
	/* The same fault where the kernel could not look up the mapping (mmap lock
	 * busy): page = virtual address >> 12 of process tgid; user side resolves it
	 * through /proc/PID/maps. */
	SNAPBPF_SRC_VADDR = 1,
	/* kvm:kvm_page_fault (two-dimensional paging): page = guest-physical >> 12. */
	SNAPBPF_SRC_KVM_FAULT = 2,
	/* kvmmmu:kvm_mmu_set_spte (shadow paging): page = guest frame number. */
	SNAPBPF_SRC_KVM_SPTE = 3,
	SNAPBPF_SRC_COUNT = 4,
};

enum snapbpf_access {
	SNAPBPF_READ = 1,
	SNAPBPF_WRITE = 2,
};

/* Flags of an event. */
#define SNAPBPF_EV_UPGRADE 0x1u /* page was seen before as read; this is its first write */
#define SNAPBPF_EV_NODEDUP 0x2u /* dedup map was full: may repeat, user side folds it */

/* One first touch (or a read → write upgrade), 32 bytes. */
struct snapbpf_event {
	__u64 time_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 page;    /* meaning depends on source, see enum snapbpf_source */
	__u64 seq;     /* global emission sequence number, from 0 */
	__u32 tgid;    /* process that faulted (the VMM for KVM sources) */
	__u8 source;   /* enum snapbpf_source */
	__u8 access;   /* SNAPBPF_READ or SNAPBPF_WRITE (a write implies a read) */
	__u8 flags;    /* SNAPBPF_EV_* */
	__u8 level;    /* KVM_SPTE: mapping level (1 = 4 KiB); else 1 */
};

/* The in-kernel dedup key: first touch per (source, tgid, page). tgid is 0 for
 * SNAPBPF_SRC_FILE (an image page is an image page whichever process maps it). */
struct snapbpf_key {
	__u64 page;
	__u32 tgid;
	__u32 source;
};

/* Per-CPU counters (index into the stats array). */
enum snapbpf_stat {
	SNAPBPF_STAT_LOST = 0,        /* ring buffer full: event dropped */
	SNAPBPF_STAT_DEDUP_FULL = 1,  /* dedup map full: event sent without dedup */
	SNAPBPF_STAT_VMA_BUSY = 2,    /* mapping lookup failed: sent as SNAPBPF_SRC_VADDR */
	SNAPBPF_STAT_PREFETCH = 3,    /* KVM_SPTE without the accessed bit (speculative): skipped */
	SNAPBPF_STAT_OTHER_FILE = 4,  /* faults of traced processes outside the image: skipped */
	SNAPBPF_STAT_FAULTS = 5,      /* faults of traced processes seen (all sources) */
	SNAPBPF_STAT_COUNT = 6,
};

/* Which tracepoints record (bits of config). */
#define SNAPBPF_WANT_USER 0x1u      /* exceptions:page_fault_user + page_fault_kernel */
#define SNAPBPF_WANT_KVM_FAULT 0x2u /* kvm:kvm_page_fault */
#define SNAPBPF_WANT_KVM_SPTE 0x4u  /* kvmmmu:kvm_mmu_set_spte */

#endif

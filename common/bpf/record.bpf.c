// SPDX-License-Identifier: GPL-2.0
/* record.bpf.c: the kernel side of `snap-record --method bpf`.
 *
 * Tracepoints only (kprobes and fentry are not available everywhere): page faults of the
 * traced processes (exceptions:page_fault_user/page_fault_kernel) on a mapping of the
 * image file, and KVM's view of the guest's touches (kvm:kvm_page_fault with two-dimensional
 * paging, kvmmmu:kvm_mmu_set_spte with shadow paging). The first touch of every page is
 * reported once through a ring buffer, and once more when a page first seen as read is
 * written. Dedup happens here so that the ring buffer carries one event per page, not one
 * per fault (shadow paging re-creates sptes many times).
 *
 * Field access goes through CO-RE: the tracepoint records are declared below as
 * preserve_access_index "flavours" of the kernel's trace_event_raw_* types, so offsets are
 * relocated against the running kernel's BTF and a renamed record is detected at load time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "record.h"

char LICENSE[] SEC("license") = "GPL";

#define EBUSY_ 16
#define ENOENT_ 2
#define EEXIST_ 17
#define X86_PF_WRITE (1UL << 1)

/* Set by the loader before load. */
const volatile __u64 image_ino = 0;
const volatile __u32 image_dev = 0;          /* kernel encoding: major << 20 | minor */
const volatile bool resolve_in_kernel = true; /* false: every fault goes out as VADDR */
const volatile __u64 spte_accessed_mask = 0; /* 0: keep every spte (no prefetch filter) */
const volatile __u64 spte_writable_mask = 1ULL << 1;
const volatile bool follow_forks = true;
/* Wake the consumer only when this much is waiting: a wakeup per event costs an IPI and a
 * context switch (several µs, more inside a VM); the consumer drains on a timer otherwise. */
const volatile __u64 wakeup_bytes = 1 << 20;

__u64 seq_counter = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 18); /* resized by the loader */
	__type(key, struct snapbpf_key);
	__type(value, __u32);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SNAPBPF_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Tracepoint records, relocated by name (the part before ___) against kernel BTF. */
struct trace_event_raw_exceptions___snap {
	unsigned long address;
	unsigned long error_code;
} __attribute__((preserve_access_index));

/* Name of the same record before Linux 5.x renamed the event class. */
struct trace_event_raw_x86_exceptions___snap {
	unsigned long address;
	unsigned long error_code;
} __attribute__((preserve_access_index));

struct trace_event_raw_kvm_page_fault___snap {
	__u64 fault_address;
	__u64 error_code;
} __attribute__((preserve_access_index));

struct trace_event_raw_kvm_mmu_set_spte___snap {
	__u64 gfn;
	__u64 spte;
	__u8 level;
} __attribute__((preserve_access_index));

struct trace_event_raw_sched_process_fork___snap {
	pid_t child_pid;
} __attribute__((preserve_access_index));

static __always_inline void count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);
	if (v)
		*v += 1;
}

static __always_inline bool traced(__u32 *tgid_out)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	*tgid_out = tgid;
	return bpf_map_lookup_elem(&tgids, &tgid) != NULL;
}

/* Report the first touch of (source, tgid, page), or its first write. */
static __always_inline int touch(__u64 now, __u32 tgid, __u8 source, __u64 page, __u8 access,
				 __u8 level)
{
	struct snapbpf_key key = {
		.page = page,
		.tgid = source == SNAPBPF_SRC_FILE ? 0 : tgid,
		.source = source,
	};
	__u32 bits = access;
	__u8 flags = 0;
	long err = bpf_map_update_elem(&seen, &key, &bits, BPF_NOEXIST);
	if (err == -EEXIST_) {
		__u32 *old = bpf_map_lookup_elem(&seen, &key);
		if (!old || !(access & SNAPBPF_WRITE) || (*old & SNAPBPF_WRITE))
			return 0;
		/* Two CPUs may race to report the upgrade: the fetch-or lets one through. */
		if (__sync_fetch_and_or(old, SNAPBPF_WRITE) & SNAPBPF_WRITE)
			return 0;
		flags = SNAPBPF_EV_UPGRADE;
	} else if (err) {
		count(SNAPBPF_STAT_DEDUP_FULL);
		flags = SNAPBPF_EV_NODEDUP;
	}

	struct snapbpf_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(SNAPBPF_STAT_LOST);
		return 0;
	}
	e->time_ns = now;
	e->page = page;
	e->seq = __sync_fetch_and_add(&seq_counter, 1);
	e->tgid = tgid;
	e->source = source;
	e->access = access;
	e->flags = flags;
	e->level = level;
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
				     ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	return 0;
}

/* The mapping lookup (bpf_find_vma) takes the mmap lock and, with interrupts off as in
 * the page-fault path, defers the unlock to an irq_work: ~20 µs per fault measured inside
 * a VM. So the mappings it finds are cached per process, and the cache is dropped whenever
 * the address space may change (mmap, munmap, mremap, brk: at entry and exit; exec). */
#define VMA_SLOTS 16

struct vma_slot {
	__u64 start, end, pgoff;
	__u64 image; /* 1: a mapping of the image file */
};

struct vma_cache {
	__u64 gen;
	__u64 next;
	struct vma_slot slot[VMA_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct vma_cache);
} vmas SEC(".maps");

const volatile bool use_vma_cache = true;

struct vma_lookup {
	__u64 addr;
	__u64 start, end, pgoff;
	bool image;
};

static long match_vma(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_lookup *c = data;
	c->start = BPF_CORE_READ(vma, vm_start);
	c->end = BPF_CORE_READ(vma, vm_end);
	c->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	struct file *file = BPF_CORE_READ(vma, vm_file);
	if (!file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	c->image = BPF_CORE_READ(inode, i_ino) == image_ino &&
		   BPF_CORE_READ(inode, i_sb, s_dev) == image_dev;
	return 0;
}

static __always_inline void invalidate_vmas(void)
{
	__u32 tgid;
	if (!traced(&tgid))
		return;
	struct vma_cache *vc = bpf_map_lookup_elem(&vmas, &tgid);
	if (!vc)
		return;
	__sync_fetch_and_add(&vc->gen, 1);
	for (int i = 0; i < VMA_SLOTS; i++)
		vc->slot[i].end = 0;
}

static struct vma_cache empty_cache;

static __always_inline int fault(__u64 addr, __u64 error_code)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid;
	if (!traced(&tgid))
		return 0;
	count(SNAPBPF_STAT_FAULTS);
	__u8 access = (error_code & X86_PF_WRITE) ? SNAPBPF_WRITE : SNAPBPF_READ;
	if (!resolve_in_kernel)
		return touch(now, tgid, SNAPBPF_SRC_VADDR, addr >> 12, access, 1);

	struct vma_cache *vc = NULL;
	if (use_vma_cache) {
		vc = bpf_map_lookup_elem(&vmas, &tgid);
		if (!vc) {
			bpf_map_update_elem(&vmas, &tgid, &empty_cache, BPF_NOEXIST);
			vc = bpf_map_lookup_elem(&vmas, &tgid);
		}
	}
	__u64 gen = 0;
	if (vc) {
		for (int i = 0; i < VMA_SLOTS; i++) {
			struct vma_slot *s = &vc->slot[i];
			if (addr >= s->start && addr < s->end) {
				if (!s->image) {
					count(SNAPBPF_STAT_OTHER_FILE);
					return 0;
				}
				return touch(now, tgid, SNAPBPF_SRC_FILE,
					     s->pgoff + ((addr - s->start) >> 12), access, 1);
			}
		}
		gen = vc->gen;
	}

	struct vma_lookup c = { .addr = addr };
	long err = bpf_find_vma(bpf_get_current_task_btf(), addr, match_vma, &c, 0);
	if (err == -ENOENT_) { /* no mapping there: a kernel address or a segfault */
		count(SNAPBPF_STAT_OTHER_FILE);
		return 0;
	}
	if (err) {
		/* mmap lock contended or its deferred unlock busy: let user space resolve it. */
		count(SNAPBPF_STAT_VMA_BUSY);
		return touch(now, tgid, SNAPBPF_SRC_VADDR, addr >> 12, access, 1);
	}
	/* Remember it unless the address space changed meanwhile. */
	if (vc && vc->gen == gen) {
		__u64 i = __sync_fetch_and_add(&vc->next, 1) % VMA_SLOTS;
		struct vma_slot *s = &vc->slot[i & (VMA_SLOTS - 1)];
		s->end = 0;
		s->start = c.start;
		s->pgoff = c.pgoff;
		s->image = c.image;
		s->end = c.end;
	}
	if (!c.image) {
		count(SNAPBPF_STAT_OTHER_FILE);
		return 0;
	}
	return touch(now, tgid, SNAPBPF_SRC_FILE, c.pgoff + ((addr - c.start) >> 12), access, 1);
}

static __always_inline int exception(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_exceptions___snap)) {
		struct trace_event_raw_exceptions___snap *r = ctx;
		return fault(r->address, r->error_code);
	}
	struct trace_event_raw_x86_exceptions___snap *r = ctx;
	return fault(r->address, r->error_code);
}

SEC("tracepoint/exceptions/page_fault_user")
int snap_fault_user(void *ctx)
{
	return exception(ctx);
}

/* A traced process's system calls touch its mappings in kernel mode (read(2) into the
 * mapping; under PVM, KVM's instruction emulator reading guest memory). */
SEC("tracepoint/exceptions/page_fault_kernel")
int snap_fault_kernel(void *ctx)
{
	return exception(ctx);
}

SEC("tracepoint/kvm/kvm_page_fault")
int snap_kvm_fault(struct trace_event_raw_kvm_page_fault___snap *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid;
	if (!traced(&tgid))
		return 0;
	count(SNAPBPF_STAT_FAULTS);
	/* Bit 1 is "write" in the #PF error code, in SVM's NPF error code and in VMX's EPT
	 * violation exit qualification alike. */
	__u8 access = (ctx->error_code & (1ULL << 1)) ? SNAPBPF_WRITE : SNAPBPF_READ;
	return touch(now, tgid, SNAPBPF_SRC_KVM_FAULT, ctx->fault_address >> 12, access, 1);
}

SEC("tracepoint/kvmmmu/kvm_mmu_set_spte")
int snap_kvm_spte(struct trace_event_raw_kvm_mmu_set_spte___snap *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid;
	if (!traced(&tgid))
		return 0;
	count(SNAPBPF_STAT_FAULTS);
	__u64 spte = ctx->spte;
	/* Shadow paging prefetches neighbouring guest PTEs with the accessed bit clear: those
	 * pages were not touched. */
	if (spte_accessed_mask && !(spte & spte_accessed_mask)) {
		count(SNAPBPF_STAT_PREFETCH);
		return 0;
	}
	__u8 access = (spte & spte_writable_mask) ? SNAPBPF_WRITE : SNAPBPF_READ;
	return touch(now, tgid, SNAPBPF_SRC_KVM_SPTE, ctx->gfn, access, ctx->level);
}

/* Address-space changes of a traced process drop its mapping cache. */
#define INVALIDATE_ON(name)                                       	SEC("tracepoint/syscalls/sys_enter_" #name)               	int snap_enter_##name(void *ctx) { invalidate_vmas(); return 0; } 	SEC("tracepoint/syscalls/sys_exit_" #name)                	int snap_exit_##name(void *ctx) { invalidate_vmas(); return 0; }
INVALIDATE_ON(mmap)
INVALIDATE_ON(munmap)
INVALIDATE_ON(mremap)
INVALIDATE_ON(brk)

SEC("tracepoint/sched/sched_process_exec")
int snap_exec(void *ctx)
{
	__u32 tgid;
	if (traced(&tgid))
		bpf_map_delete_elem(&vmas, &tgid);
	return 0;
}

/* Follow the target's children: `-- sh -c 'qemu …'` or a restore script records the VMM. */
SEC("tracepoint/sched/sched_process_fork")
int snap_fork(struct trace_event_raw_sched_process_fork___snap *ctx)
{
	__u32 parent;
	if (!follow_forks || !traced(&parent))
		return 0;
	__u32 child = ctx->child_pid;
	__u8 one = 1;
	bpf_map_update_elem(&tgids, &child, &one, BPF_ANY);
	return 0;
}

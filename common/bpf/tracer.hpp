// SPDX-License-Identifier: Apache-2.0
// The loader and consumer of record.bpf.c: checks that BPF may run here, opens the
// skeleton, configures it (image identity, which tracepoints, map sizes), loads, attaches,
// and drains the ring buffer on a thread of its own into a sink. The order follows bcc's
// libbpf-tools: open → configure → load → attach → poll → cleanup.
#pragma once
#include "common/bpf/decode.hpp"
#include "common/bpf/record.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace snap::bpf {

// Throws CapabilityError (exit 4, with a hint) when BPF cannot be used here: not root and
// without CAP_BPF+CAP_PERFMON, or no kernel BTF at /sys/kernel/btf/vmlinux.
void check_available();

// How this host's KVM maps guest memory, which decides the tracepoint that sees guest
// touches: tdp (EPT/NPT: kvm:kvm_page_fault has guest-physical addresses) or shadow
// (PVM, or ept=0/npt=0: kvmmmu:kvm_mmu_set_spte has guest frame numbers). none: no KVM.
enum class Paging { none, tdp, shadow };
Paging detect_kvm_paging();
const char* paging_name(Paging p);

// True if the tracepoint CATEGORY/NAME exists (mounts tracefs at /sys/kernel/tracing if no
// tracefs is mounted; throws CapabilityError if that fails).
bool tracepoint_exists(const std::string& category, const std::string& name);

struct TracerConfig {
    dev_t image_dev = 0;             // st_dev of the image (user-space encoding)
    uint64_t image_ino = 0;
    bool resolve_in_kernel = true;   // false: every fault is resolved via /proc/PID/maps
    bool want_user = true;           // exceptions:page_fault_user/kernel
    bool want_kvm_fault = false;     // kvm:kvm_page_fault
    bool want_kvm_spte = false;      // kvmmmu:kvm_mmu_set_spte
    uint64_t spte_accessed_mask = 0; // skip sptes without this bit (prefetches); 0 = keep all
    uint64_t ringbuf_bytes = 16ull << 20;
    uint32_t dedup_entries = 1u << 18;
    bool follow_forks = true;
};

using EventSink = std::function<void(const snapbpf_event&)>;

class Tracer {
public:
    // Open, configure, load and attach. Throws CapabilityError when the kernel refuses
    // (EPERM/EACCES) or a wanted tracepoint is missing, snap::Error otherwise.
    Tracer(const TracerConfig& cfg, EventSink sink);
    ~Tracer();
    Tracer(const Tracer&) = delete;
    Tracer& operator=(const Tracer&) = delete;

    void trace(pid_t tgid);  // record this process (and, with follow_forks, its children)
    void start();            // start draining on a thread; the sink runs on that thread
    void stop();             // detach, drain what is left, join; the sink is not called after
    // Kernel-side counters (lost, dedup_full, vma_busy, prefetch_skipped, other_file, faults).
    void add_kernel_counters(Counters& c) const;
    std::vector<std::string> attached() const;  // "category:name" of attached tracepoints
    bool vma_cache() const;  // mappings are cached in the kernel (syscall tracepoints exist)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace snap::bpf

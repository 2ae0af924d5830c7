// SPDX-License-Identifier: Apache-2.0
// The pure half of the bpf recording method: what the user side does with the events that
// record.bpf.c sends. Guest-physical addresses go through the VMM's memory layout (GpaMap),
// virtual addresses the kernel could not resolve go through /proc/PID/maps (VaddrResolver),
// and TouchLog turns the stream into first touches in time order. No system calls here
// except VaddrResolver's maps reader, which is injectable for tests.
#pragma once
#include "common/bpf/record.h"
#include "common/loadset.hpp"
#include "common/sys/proc.hpp"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace snap::bpf {

// Kernel page size the BPF side counts in (x86-64).
constexpr uint64_t kKernelPageBytes = 4096;

// Guest-physical → image offset: a list of regions [gpa, gpa+bytes) shown at image bytes
// [offset, offset+bytes). Text form: "GPA:OFFSET:SIZE[,GPA:OFFSET:SIZE…]", numbers decimal
// or 0x-hex with an optional K/M/G/T suffix (binary), e.g. "0:0:3G,4G:3G:1G".
struct GpaRegion {
    uint64_t gpa = 0, offset = 0, bytes = 0;
    bool operator==(const GpaRegion&) const = default;
};

class GpaMap {
public:
    // The default layout: identity over the whole image. Only valid when the image is at
    // most 3 GiB (x86 VMMs put RAM above 3 GiB at 4 GiB): throws UsageError otherwise.
    static GpaMap identity(uint64_t image_bytes);
    // Parse text; regions must be page-aligned, non-empty, not overlapping (in guest-physical
    // nor image space) and inside the image. Throws UsageError naming the fault.
    static GpaMap parse(const std::string& text, uint64_t image_bytes);
    // Image byte offset of a guest-physical address, nullopt outside every region.
    std::optional<uint64_t> to_offset(uint64_t gpa) const;
    const std::vector<GpaRegion>& regions() const { return regions_; }
    std::string to_string() const;

private:
    std::vector<GpaRegion> regions_;  // sorted by gpa
};

// "4096", "0x1000", "3G", "512M": bytes. nullopt if malformed or overflowing.
std::optional<uint64_t> parse_size(const std::string& text);

// Resolves a traced process's virtual address to an image byte offset through its
// /proc/PID/maps, re-reading the maps when an address is not covered by a mapping of the image
// it knows (the mapping may appear after the process starts). Remembers the regions of
// processes that have exited.
class VaddrResolver {
public:
    using MapsReader = std::function<std::vector<sys::MapsEntry>(pid_t)>;
    VaddrResolver(dev_t image_dev, uint64_t image_ino, std::string image_path, MapsReader reader);
    std::optional<uint64_t> to_offset(pid_t tgid, uint64_t vaddr);
    uint64_t maps_reads() const { return maps_reads_; }

private:
    struct Regions {
        std::vector<sys::ImageRegion> image;
        std::vector<std::pair<uint64_t, uint64_t>> other;  // [start, end) of other mappings
    };
    int lookup(pid_t tgid, uint64_t vaddr, uint64_t& offset) const;
    dev_t dev_;
    uint64_t ino_;
    std::string path_;
    MapsReader reader_;
    std::unordered_map<pid_t, Regions> regions_;
    uint64_t maps_reads_ = 0;
};

// Counters of one recording, summed over CPUs (kernel side) plus what the user side dropped.
struct Counters {
    uint64_t events = 0;             // ring-buffer events received
    uint64_t upgrades = 0;           // of which: read → write upgrades
    uint64_t by_source[SNAPBPF_SRC_COUNT] = {};
    uint64_t lost = 0;               // ring buffer full: dropped in the kernel
    uint64_t dedup_full = 0;         // dedup map full: sent without dedup
    uint64_t vma_busy = 0;           // resolved in user space instead of the kernel
    uint64_t prefetch_skipped = 0;   // shadow-paging prefetches (not touches)
    uint64_t other_file = 0;         // faults outside the image (not recorded)
    uint64_t faults = 0;             // faults of traced processes seen by the kernel side
    uint64_t outside_image = 0;      // events whose address is outside the image / gpa map
    uint64_t huge = 0;               // KVM mappings above 4 KiB (recorded as their first page)
};

const char* source_name(uint8_t source);

// The stream of events of one recording, folded into first touches. Events may arrive
// slightly out of order (two CPUs share one ring buffer): they are ordered by timestamp,
// then by sequence number, when the touches are built.
class TouchLog {
public:
    // image_bytes: size of the image; page_size: the loading set's page size.
    TouchLog(uint64_t image_bytes, uint32_t page_size);
    // Record one event whose image byte offset is known (nullopt = outside the image).
    void add(const snapbpf_event& ev, std::optional<uint64_t> image_offset);
    // First touches in time order: rank = position, time relative to start_ns (clamped at
    // 0), access = READ, or READ|WRITE once any event for the page was a write.
    std::vector<Touch> touches(uint64_t start_ns) const;
    const Counters& counters() const { return counters_; }
    Counters& counters() { return counters_; }

private:
    struct Entry {
        uint64_t time_ns, seq, page;
        uint8_t access;
    };
    uint64_t image_bytes_;
    uint32_t page_size_;
    std::vector<Entry> entries_;
    Counters counters_;
};

// The loading set's "bpf" meta object for these counters.
nlohmann::json counters_json(const Counters& c);

}  // namespace snap::bpf

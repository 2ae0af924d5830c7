// SPDX-License-Identifier: Apache-2.0
// FaultServer: serves a process's guest memory from a PageSource over a userfaultfd.
//
// Guest memory is one or more regions, each mapping host addresses [base, base+size) to image
// bytes [offset, offset+size). A MISSING fault is resolved for a whole granule around it
// (64 KiB by default: a round trip costs ~5 CoW faults, FACTS.md) with UFFDIO_COPY, or
// UFFDIO_ZEROPAGE where the source says zero. UFFD_EVENT_REMOVE (a balloon's
// madvise(DONTNEED)) turns the range into "reads back as zeros", never the snapshot again.
// The server remembers which pages it installed, so a granule skips them instead of bouncing
// off EEXIST. install() is the eager path (REAP): big DONTWAKE copies, then one wake.
// With record on, every first touch is logged in order (granule = one page, so that each
// first touch is a fault); read-faulted pages are installed write-protected when the
// userfaultfd allows it, so that a later write is seen too.
#pragma once
#include "common/loadset.hpp"
#include "common/pagerange.hpp"
#include "common/sys/idlepoll.hpp"
#include "source.hpp"
#include "uffd.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace snap::uffd {

struct Region {
    uint64_t base = 0;        // host virtual address
    uint64_t size_bytes = 0;
    uint64_t offset = 0;      // image offset of base
    uint64_t page_size = 4096;
    uint64_t end() const { return base + size_bytes; }
    bool operator==(const Region&) const = default;
};

struct AddrRange {
    uint64_t start = 0;
    uint64_t len = 0;
    bool operator==(const AddrRange&) const = default;
};

// An image page range (for eager installs).
using PageRange = snap::PageRange;

// Regions sorted by address, checked (page aligned, non-empty, not overlapping).
class RegionMap {
public:
    RegionMap() = default;
    explicit RegionMap(std::vector<Region> regions);  // throws Error naming the bad region
    const std::vector<Region>& regions() const { return regions_; }
    // The region holding addr, or -1.
    int find(uint64_t addr) const;
    // The range to resolve for a fault at addr: aligned down to the granule (itself rounded up
    // to the region's page size), clamped to the region. {0,0} if addr is in no region.
    AddrRange granule_for(uint64_t addr, uint64_t granule_bytes) const;
    // Host address ranges holding image bytes [offset, offset+bytes), in region order.
    std::vector<AddrRange> addresses_of(uint64_t offset, uint64_t bytes) const;

private:
    std::vector<Region> regions_;
};

struct ServerOptions {
    uint64_t granule_bytes = 64 * 1024;     // resolve this much around a fault (rounded to pages)
    // Readahead for sequential scans: a fault just past the previous fault's range resolves
    // twice that range, from the faulting page on, up to this (0, or not above granule_bytes:
    // off); any other fault starts again at granule_bytes.
    uint64_t max_granule_bytes = 256 * 1024;
    uint64_t max_ioctl_bytes = 2 << 20;     // eager installs: bytes per UFFDIO_COPY
    bool use_zeropage = true;               // zero stretches via UFFDIO_ZEROPAGE (else copy zeros)
    // Eager installs wake the threads waiting on what they install, ioctl by ioctl (the VMM
    // runs while they are made: --exec --overlap; a fault outside them waits until they are
    // done). Otherwise they leave the range asleep and install() wakes it once at the end.
    bool wake_installs = false;
    bool prefault_source = true;            // map source bytes in this process before UFFDIO_COPY
    // Eager installs of 4 KiB pages split over this many threads when the source allows
    // concurrent reads (a 4 KiB install is mostly the kernel allocating the page: it scales).
    unsigned install_threads = 2;
    bool record = false;                    // log first touches (forces a one-page granule)
    bool record_writes_wp = true;           // with record: write-protect read faults to see writes
    // With record and a userfaultfd negotiated with UFFD_FEATURE_THREAD_ID: the process whose
    // threads are the VMM. A first-touch fault from any other thread is a kernel worker faulting
    // on the VMM's behalf — KVM's async page fault, which always asks for write access whatever
    // the guest did. It is still recorded as a write (over-approximating is the safe side: a
    // page wrongly taken as read-only costs a copy-on-write fault on the restore's critical
    // path), but counted (foreign_faults) and named in the loading set's limitations.
    // 0 = do not look.
    int owner_pid = 0;
    // After a batch of faults, poll the descriptor without sleeping for up to this long before
    // sleeping in poll(2): a guest whose faults come one after another (each waiting on a pool
    // round trip) has its next fault caught at once, and the cores stay awake — a core of
    // these VMs that goes idle takes tens of µs to wake, on every hop of a fault's chain. Costs
    // up to this much CPU after each batch. 0: sleep at once.
    int spin_us = 0;
    // While polling (spin_us), hold a CPU latency request of 0 µs (sys::IdlePolling), so that
    // idle cores poll instead of halting and the threads a fault's chain wakes — the store's
    // server, the guest's vCPU — run at once. Released before the server sleeps. Does nothing
    // where the request is unavailable (not root).
    bool idle_poll = true;
};

struct ServerStats {
    uint64_t faults = 0, read_faults = 0, write_faults = 0, wp_faults = 0;
    uint64_t pages_copied = 0, pages_zeroed = 0, bytes_copied = 0;  // pages: 4 KiB ones
    uint64_t eager_pages_copied = 0, eager_pages_zeroed = 0, eager_ns = 0;
    uint64_t install_threads = 1;  // the most threads an eager install used (install() may be called per window)
    uint64_t eexist = 0, eagain = 0, gone = 0, spurious = 0;  // spurious: fault on a page already served
    uint64_t foreign_faults = 0;  // first touches by threads outside owner_pid (KVM async page faults)
    uint64_t spin_batches = 0;    // batches of faults found while polling (spin_us), not after a sleep
    std::string idle_poll = "off";  // ServerOptions::idle_poll: "on", "off", or "unavailable"
    uint64_t idle_poll_windows = 0, idle_poll_ns = 0;  // times held, and for how long
    uint64_t remove_events = 0, removed_bytes = 0, unmap_events = 0, remap_events = 0, fork_events = 0;
    uint64_t fault_ns = 0;   // time spent resolving faults (event read → ioctls done)
    uint64_t serve_ns = 0;   // wall time of serve()
    uint64_t ioctls = 0;
    nlohmann::json to_json() const;
};

class FaultServer {
public:
    // The server does not own source; uffd is moved in.
    FaultServer(Userfaultfd uffd, std::vector<Region> regions, PageSource& source, ServerOptions opt = {});
    ~FaultServer();
    FaultServer(const FaultServer&) = delete;
    FaultServer& operator=(const FaultServer&) = delete;

    // Register every region (MISSING, plus WP when recording writes and the fd has the
    // feature). Not for an adopted Firecracker fd, whose regions are registered already —
    // except that enable_wp() may add WP to them.
    void register_regions();
    // Try to add WP registration to the regions (recording). False (and record reads/writes
    // from the fault flags only) when the userfaultfd refuses.
    bool enable_wp();

    // Eager install of image page ranges (REAP): pieces of up to max_ioctl_bytes with
    // DONTWAKE, then one wake per region. Pages already served are skipped. Returns pages done.
    uint64_t install(std::span<const PageRange> ranges);
    // Image page ranges the target's mapping holds already (mapped in place from a file):
    // never installed, by a fault's granule or otherwise.
    void mark_present(std::span<const PageRange> ranges);

    // Handle whatever events are pending (non-blocking).
    void handle_pending();
    // An ioctl said the target or a range is gone (ESRCH/ENOENT): the process likely exited.
    bool target_gone() const { return target_gone_; }
    // Poll the userfaultfd and extra_fds; return when one of extra_fds is readable (its index),
    // when stop becomes true (-1), or after timeout_ms without events when timeout_ms >= 0 (-2).
    int serve(std::span<const int> extra_fds, const std::atomic<bool>* stop = nullptr, int timeout_ms = -1);

    const ServerStats& stats() const;
    const RegionMap& regions() const { return map_; }
    Userfaultfd& uffd() { return uffd_; }
    bool recording_writes() const { return wp_active_; }
    // The recorded first touches (record mode): image pages, in order, rank = order.
    const std::vector<Touch>& touches() const { return touches_; }
    // A loading set from the recording (method "uffd"). meta tells what the method could see.
    LoadingSet loading_set(const ImageIdentity& image) const;
    // Called after each event batch (tests, progress). May be empty.
    std::function<void(const ServerStats&)> on_batch;

private:
    enum PageState : uint8_t { kMissing = 0, kPresent = 1, kRemoved = 2, kUnmapped = 3 };
    void handle_event(const uffd_msg& m);
    void handle_fault(uint64_t addr, uint64_t flags, uint32_t ptid);
    bool foreign_thread(uint32_t ptid);
    void handle_remove(uint64_t start, uint64_t end, bool unmap);
    void handle_remap(uint64_t from, uint64_t to, uint64_t len);
    // Resolve [start, start+len) within region r for pages in state missing/removed.
    // Returns false if a pending event must be read first (EAGAIN).
    bool resolve(int r, uint64_t start, uint64_t len, bool wake, bool write_protect, bool eager);
    // *woke (when given): the run was filled by one ioctl that also woke its waiters (the
    // caller's wake can be skipped); else every ioctl leaves them asleep.
    bool fill_run(int r, uint64_t start, uint64_t len, bool removed, bool write_protect, bool eager, bool* woke = nullptr);
    void drain_events();
    // One installer thread's share of an eager install (4 KiB regions, pages in disjoint
    // ranges): DONTWAKE copies; stops at the first range it cannot finish (the serial pass
    // after it does the rest).
    struct InstallCounts {
        uint64_t copied = 0, zeroed = 0, bytes = 0, eexist = 0;
    };
    static bool populate_source(const std::byte* data, uint64_t bytes);
    void install_share(std::span<const PageRange> ranges, InstallCounts& c, std::byte* scratch, uint64_t scratch_bytes);
    uint8_t& state(int r, uint64_t addr);
    void record_touch(int r, uint64_t addr, bool write);
    uint64_t now_ns() const;

    Userfaultfd uffd_;
    RegionMap map_;
    PageSource& source_;
    ServerOptions opt_;
    std::vector<std::vector<uint8_t>> states_;
    // Not value-initialised: zeroing 2 MiB up front costs ~2.5 ms of page faults on the
    // restore's critical path; its pages are faulted in only as sources fill them.
    std::unique_ptr<std::byte[]> scratch_;
    uint64_t seq_end_ = 0, seq_bytes_ = 0;  // the last fault's resolved range ends here, and was this long
    uint64_t scratch_bytes_ = 0;
    // Zeros to copy from where UFFDIO_ZEROPAGE does not do (huge pages, write-protected
    // installs): a read-only anonymous mapping, all the shared zero page once populated.
    const std::byte* zeros();
    void* zeros_ = nullptr;
    std::deque<uffd_msg> queued_faults_;
    std::unique_ptr<sys::IdlePolling> idle_poll_;  // ServerOptions::idle_poll, with polling
    mutable ServerStats stats_;
    bool wp_active_ = false;
    bool target_gone_ = false;
    uint64_t start_ns_ = 0;
    std::vector<Touch> touches_;
    std::vector<std::vector<uint32_t>> touch_index_;  // per region page → touches_ index + 1
    std::vector<std::pair<uint32_t, bool>> thread_cache_;  // ptid → outside owner_pid
};

}  // namespace snap::uffd

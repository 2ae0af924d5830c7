// SPDX-License-Identifier: Apache-2.0
// FaultServer (see server.hpp): event loop, granule resolution, REMOVE/UNMAP/REMAP, eager
// installs and first-touch recording.
#include "server.hpp"

#include "common/error.hpp"

#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <numeric>
#include <thread>

namespace snap::uffd {

namespace {

uint64_t mono_ns() { return sys::monotonic_ns(); }

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

}  // namespace

// ---- RegionMap -------------------------------------------------------------------------

RegionMap::RegionMap(std::vector<Region> regions) : regions_(std::move(regions)) {
    std::sort(regions_.begin(), regions_.end(), [](const Region& a, const Region& b) { return a.base < b.base; });
    for (size_t i = 0; i < regions_.size(); ++i) {
        const Region& r = regions_[i];
        std::string name = "region " + std::to_string(i) + " (base " + hex(r.base) + ")";
        if (!is_pow2(r.page_size) || r.page_size < 4096) throw Error(name + ": page size " + std::to_string(r.page_size) + " is not a power of two >= 4096");
        if (r.size_bytes == 0) throw Error(name + ": empty");
        if (r.base % r.page_size || r.size_bytes % r.page_size || r.offset % 4096)
            throw Error(name + ": base, size or offset not page aligned");
        if (r.base + r.size_bytes < r.base) throw Error(name + ": wraps around the address space");
        if (i > 0 && regions_[i - 1].end() > r.base) throw Error(name + ": overlaps the region before it");
    }
}

int RegionMap::find(uint64_t addr) const {
    auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                               [](uint64_t a, const Region& r) { return a < r.base; });
    if (it == regions_.begin()) return -1;
    --it;
    return addr < it->end() ? static_cast<int>(it - regions_.begin()) : -1;
}

AddrRange RegionMap::granule_for(uint64_t addr, uint64_t granule_bytes) const {
    int i = find(addr);
    if (i < 0) return {};
    const Region& r = regions_[static_cast<size_t>(i)];
    uint64_t g = std::max<uint64_t>(granule_bytes, r.page_size);
    g = (g + r.page_size - 1) / r.page_size * r.page_size;
    // Align within the region (relative to base), so a granule never straddles two regions
    // and stays aligned in the image too.
    uint64_t rel = (addr - r.base) / g * g;
    uint64_t start = r.base + rel;
    uint64_t end = std::min(start + g, r.end());
    return {start, end - start};
}

std::vector<AddrRange> RegionMap::addresses_of(uint64_t offset, uint64_t bytes) const {
    std::vector<AddrRange> out;
    uint64_t end = offset + bytes;
    for (const Region& r : regions_) {
        uint64_t lo = std::max(offset, r.offset), hi = std::min(end, r.offset + r.size_bytes);
        if (lo < hi) out.push_back({r.base + (lo - r.offset), hi - lo});
    }
    return out;
}

// ---- stats -----------------------------------------------------------------------------

nlohmann::json ServerStats::to_json() const {
    return {{"faults", faults},
            {"read_faults", read_faults},
            {"write_faults", write_faults},
            {"wp_faults", wp_faults},
            {"foreign_faults", foreign_faults},
            {"spin_batches", spin_batches},
            {"idle_poll", idle_poll},
            {"idle_poll_windows", idle_poll_windows},
            {"idle_poll_ns", idle_poll_ns},
            // Amounts in bytes: the server installs in units of the VMM region's page size,
            // which need not be the artifact's (its counters count 4 KiB).
            {"copied_bytes", bytes_copied},  // eager and on demand
            {"demand_copied_bytes", pages_copied * 4096},
            {"demand_zeroed_bytes", pages_zeroed * 4096},
            {"eager_copied_bytes", eager_pages_copied * 4096},
            {"eager_zeroed_bytes", eager_pages_zeroed * 4096},
            {"eager_ns", eager_ns},
            {"install_threads", install_threads},
            {"eexist_ioctls", eexist},
            {"eagain_ioctls", eagain},
            {"gone_ioctls", gone},
            {"spurious_faults", spurious},
            {"remove_events", remove_events},
            {"removed_bytes", removed_bytes},
            {"unmap_events", unmap_events},
            {"remap_events", remap_events},
            {"fork_events", fork_events},
            {"fault_ns", fault_ns},
            {"mean_fault_ns", faults ? fault_ns / faults : 0},
            {"serve_ns", serve_ns},
            {"ioctls", ioctls}};
}

// ---- FaultServer -----------------------------------------------------------------------

FaultServer::FaultServer(Userfaultfd uffd, std::vector<Region> regions, PageSource& source, ServerOptions opt)
    : uffd_(std::move(uffd)), map_(std::move(regions)), source_(source), opt_(opt) {
    if (opt_.record) opt_.granule_bytes = 0;  // one page: every first touch must fault
    uint64_t biggest_page = 4096;
    for (const Region& r : map_.regions()) {
        states_.emplace_back(r.size_bytes / r.page_size, kMissing);
        touch_index_.emplace_back(opt_.record ? r.size_bytes / r.page_size : 0, 0);
        biggest_page = std::max(biggest_page, r.page_size);
    }
    uint64_t scratch = std::max({opt_.granule_bytes, opt_.max_granule_bytes, opt_.max_ioctl_bytes, biggest_page});
    scratch = (scratch + biggest_page - 1) / biggest_page * biggest_page;
    opt_.max_ioctl_bytes = std::max(opt_.max_ioctl_bytes, biggest_page);
    scratch_.reset(new std::byte[scratch]);
    scratch_bytes_ = scratch;
    start_ns_ = mono_ns();
    if (opt_.idle_poll && opt_.spin_us > 0) idle_poll_ = std::make_unique<sys::IdlePolling>();
}

FaultServer::~FaultServer() {
    if (zeros_) ::munmap(zeros_, scratch_bytes_);
}

const std::byte* FaultServer::zeros() {
    if (!zeros_) {
        void* p = ::mmap(nullptr, scratch_bytes_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap zeros");
        // Map the shared zero page everywhere now: UFFDIO_COPY reads its source with page
        // faults disabled, and an unmapped source page sends it down a slow retry path.
        (void)::madvise(p, scratch_bytes_, 22 /* MADV_POPULATE_READ */);
        zeros_ = p;
    }
    return static_cast<const std::byte*>(zeros_);
}

uint64_t FaultServer::now_ns() const { return mono_ns() - start_ns_; }

const ServerStats& FaultServer::stats() const {
    stats_.ioctls = uffd_.ioctl_count();
    if (idle_poll_) {
        stats_.idle_poll = idle_poll_->available() ? "on" : "unavailable";
        stats_.idle_poll_windows = idle_poll_->windows();
        stats_.idle_poll_ns = idle_poll_->held_ns();
    }
    return stats_;
}

void FaultServer::register_regions() {
    uint64_t modes = UFFDIO_REGISTER_MODE_MISSING;
    bool wp = opt_.record && opt_.record_writes_wp && uffd_.has(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
    if (wp) modes |= UFFDIO_REGISTER_MODE_WP;
    for (const Region& r : map_.regions()) uffd_.register_range(r.base, r.size_bytes, modes);
    wp_active_ = wp;
}

bool FaultServer::enable_wp() {
    try {
        for (const Region& r : map_.regions())
            uffd_.register_range(r.base, r.size_bytes, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
        wp_active_ = true;
    } catch (const Error&) {
        wp_active_ = false;
    }
    return wp_active_;
}

uint8_t& FaultServer::state(int r, uint64_t addr) {
    const Region& R = map_.regions()[static_cast<size_t>(r)];
    return states_[static_cast<size_t>(r)][(addr - R.base) / R.page_size];
}

void FaultServer::record_touch(int r, uint64_t addr, bool write) {
    if (!opt_.record) return;
    const Region& R = map_.regions()[static_cast<size_t>(r)];
    uint32_t& idx = touch_index_[static_cast<size_t>(r)][(addr - R.base) / R.page_size];
    uint8_t access = write ? (kAccessRead | kAccessWrite) : kAccessRead;
    if (idx == 0) {
        uint64_t image_page = (R.offset + (addr - R.base)) / source_.page_size();
        touches_.push_back({image_page, now_ns(), static_cast<uint32_t>(touches_.size()), access});
        idx = static_cast<uint32_t>(touches_.size());
    } else {
        touches_[idx - 1].access |= access;
    }
}

bool FaultServer::fill_run(int r, uint64_t start, uint64_t len, bool removed, bool write_protect, bool eager, bool* woke) {
    const Region R = map_.regions()[static_cast<size_t>(r)];
    const bool huge = R.page_size > 4096;
    uint64_t done = 0;
    auto mark = [&](uint64_t from, uint64_t bytes) {
        for (uint64_t a = from; a < from + bytes; a += R.page_size) state(r, a) = kPresent;
    };
    while (done < len) {
        uint64_t want = std::min<uint64_t>(len - done, scratch_bytes_);
        uint64_t dst = start + done;
        Piece p;
        if (removed) {
            p = {nullptr, want};
        } else {
            p = source_.read(R.offset + (dst - R.base), want, scratch_.get());
            p.bytes = std::min(p.bytes, want);
            if (p.bytes == 0) throw Error("page source returned nothing at image offset " + hex(R.offset + (dst - R.base)));
            if (p.bytes % R.page_size) {
                // A stretch shorter than the region's page (4 KiB zero detection inside a
                // huge page): gather one whole region page into scratch.
                uint64_t got = 0, off = R.offset + (dst - R.base);
                std::vector<std::byte> tmp(R.page_size);
                while (got < R.page_size) {
                    Piece q = source_.read(off + got, R.page_size - got, tmp.data());
                    q.bytes = std::min(q.bytes, R.page_size - got);
                    if (q.zero()) std::memset(scratch_.get() + got, 0, q.bytes);
                    else std::memcpy(scratch_.get() + got, q.data, q.bytes);
                    got += q.bytes;
                }
                p = {scratch_.get(), R.page_size};
            }
        }
        Result res;
        bool zero = p.zero();
        // The whole run in this one ioctl: let it wake the waiters too (one ioctl a fault, not two).
        const bool wake = woke && done == 0 && p.bytes == len;
        if (zero && opt_.use_zeropage && !huge && !write_protect) {
            res = uffd_.zeropage(dst, p.bytes, wake);
        } else {
            // UFFDIO_COPY reads the source with page faults disabled; a source page not yet
            // mapped in this process sends the kernel down a slow retry path, page by page
            // (measured: ~9 µs/page instead of ~1.5). Touching one byte per page first maps
            // them cheaply (fault-around maps 16 at a time). MADV_POPULATE_READ, not a touch:
            // a part file truncated under the restore makes it fail with EFAULT (an error
            // naming the offset) where a touch would be SIGBUS. Not for the scratch buffer,
            // which the source has just written (a system call a fault saved).
            const auto at = reinterpret_cast<uintptr_t>(p.data), from = reinterpret_cast<uintptr_t>(scratch_.get());
            const bool in_scratch = at >= from && at < from + scratch_bytes_;  // just written here
            if (!zero && opt_.prefault_source && !in_scratch && !populate_source(p.data, p.bytes))
                throw Error("the page source of image offset " + hex(R.offset + (dst - R.base)) +
                            " can no longer be read (a part file truncated or replaced under the restore)");
            res = uffd_.copy(dst, zero ? zeros() : p.data, p.bytes, wake, write_protect);
        }
        if (wake && res.status == Status::done) *woke = true;
        mark(dst, res.bytes);
        uint64_t pages = res.bytes / 4096;
        if (zero) (eager ? stats_.eager_pages_zeroed : stats_.pages_zeroed) += pages;
        else {
            (eager ? stats_.eager_pages_copied : stats_.pages_copied) += pages;
            stats_.bytes_copied += res.bytes;
        }
        switch (res.status) {
        case Status::done: done += p.bytes; break;
        case Status::exists:
            ++stats_.eexist;
            mark(dst + res.bytes, R.page_size);
            done += res.bytes + R.page_size;
            break;
        case Status::again: ++stats_.eagain; return false;
        case Status::gone:
            ++stats_.gone;
            for (uint64_t a = dst + res.bytes; a < start + len; a += R.page_size) state(r, a) = kUnmapped;
            target_gone_ = true;
            return true;
        }
    }
    return true;
}

bool FaultServer::resolve(int r, uint64_t start, uint64_t len, bool wake, bool write_protect, bool eager) {
    const Region& R = map_.regions()[static_cast<size_t>(r)];
    uint64_t end = start + len;
    uint64_t a = start;
    bool woke = false;  // one run covering [start, end), filled and woken by its own ioctl
    while (a < end) {
        uint8_t s = state(r, a);
        if (s != kMissing && s != kRemoved) {
            a += R.page_size;
            continue;
        }
        uint64_t b = a + R.page_size;
        while (b < end && state(r, b) == s) b += R.page_size;
        const bool whole = wake && a == start && b == end;
        if (!fill_run(r, a, b - a, s == kRemoved, write_protect, eager, whole ? &woke : nullptr)) return false;
        a = b;
    }
    if (wake && !woke) uffd_.wake(start, len);
    return true;
}

bool FaultServer::foreign_thread(uint32_t ptid) {
    if (!opt_.record || opt_.owner_pid <= 0 || ptid == 0 || !uffd_.has(UFFD_FEATURE_THREAD_ID)) return false;
    for (const auto& [t, foreign] : thread_cache_)
        if (t == ptid) return foreign;
    const std::string task = "/proc/" + std::to_string(opt_.owner_pid) + "/task/" + std::to_string(ptid);
    const bool foreign = ::access(task.c_str(), F_OK) != 0;
    thread_cache_.push_back({ptid, foreign});
    return foreign;
}

void FaultServer::handle_fault(uint64_t addr, uint64_t flags, uint32_t ptid) {
    uint64_t t0 = mono_ns();
    ++stats_.faults;
    int r = map_.find(addr);
    if (r < 0) throw Error("userfaultfd: fault at " + hex(addr) + " outside every region");
    const Region& R = map_.regions()[static_cast<size_t>(r)];
    uint64_t page = addr / R.page_size * R.page_size;
    if (flags & UFFD_PAGEFAULT_FLAG_WP) {
        // A write to a page installed write-protected after a read: the write we wanted to see.
        ++stats_.wp_faults;
        record_touch(r, page, true);
        for (;;) {
            Result res = uffd_.writeprotect(page, R.page_size, false, true);
            if (res.status != Status::again) break;
            ++stats_.eagain;
            drain_events();
        }
        stats_.fault_ns += mono_ns() - t0;
        return;
    }
    bool write = flags & UFFD_PAGEFAULT_FLAG_WRITE;
    ++(write ? stats_.write_faults : stats_.read_faults);
    // KVM's async page-fault worker: write access asked for, the guest's access unknown.
    if (write && foreign_thread(ptid)) ++stats_.foreign_faults;
    for (;;) {
        r = map_.find(addr);  // a REMAP taken while draining may have moved regions
        if (r < 0) break;     // the range was unmapped meanwhile: nobody waits on it
        const Region& R = map_.regions()[static_cast<size_t>(r)];
        uint8_t s = state(r, page);
        if (s == kPresent || s == kUnmapped) {
            // Already served (another thread faulted on the granule first, or an eager
            // install won the race): the faulting thread only needs waking.
            ++stats_.spurious;
            uffd_.wake(page, R.page_size);
            break;
        }
        record_touch(r, page, write);
        AddrRange g = opt_.record ? AddrRange{page, R.page_size} : map_.granule_for(addr, opt_.granule_bytes);
        if (!opt_.record && opt_.max_granule_bytes > std::max(opt_.granule_bytes, R.page_size) && page >= seq_end_ &&
            page < seq_end_ + seq_bytes_) {
            // A sequential scan: twice the last range, from this page on (readahead; never in a
            // region of pages as large as the maximum: 2 MiB pages are served one at a time).
            const uint64_t want = std::min(seq_bytes_ * 2, opt_.max_granule_bytes) / R.page_size * R.page_size;
            g = {page, std::min(want, R.end() - page)};
        }
        seq_end_ = g.start + g.len;
        seq_bytes_ = g.len;
        bool wp = opt_.record && wp_active_ && !write;
        if (resolve(r, g.start, g.len, true, wp, false)) break;
        drain_events();  // EAGAIN: a REMOVE/UNMAP/REMAP is pending; take it, then retry
    }
    stats_.fault_ns += mono_ns() - t0;
}

void FaultServer::handle_remove(uint64_t start, uint64_t end, bool unmap) {
    for (size_t i = 0; i < map_.regions().size(); ++i) {
        const Region& R = map_.regions()[i];
        uint64_t lo = std::max(start, R.base), hi = std::min(end, R.end());
        if (lo >= hi) continue;
        lo = lo / R.page_size * R.page_size;
        for (uint64_t a = lo; a < hi; a += R.page_size) {
            uint8_t& s = state(static_cast<int>(i), a);
            if (s == kUnmapped) continue;
            s = unmap ? kUnmapped : kRemoved;
            stats_.removed_bytes += R.page_size;
        }
    }
}

void FaultServer::handle_remap(uint64_t from, uint64_t to, uint64_t len) {
    int r = map_.find(from);
    if (r >= 0) {
        Region R = map_.regions()[static_cast<size_t>(r)];
        if (R.base == from && R.size_bytes == len) {
            // The whole region moved: same pages, new addresses.
            std::vector<Region> regions = map_.regions();
            regions[static_cast<size_t>(r)].base = to;
            std::vector<size_t> order(regions.size());
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return regions[a].base < regions[b].base; });
            std::vector<Region> sorted;
            std::vector<std::vector<uint8_t>> states;
            std::vector<std::vector<uint32_t>> index;
            for (size_t i : order) {
                sorted.push_back(regions[i]);
                states.push_back(std::move(states_[i]));
                index.push_back(std::move(touch_index_[i]));
            }
            map_ = RegionMap(std::move(sorted));
            states_ = std::move(states);
            touch_index_ = std::move(index);
            return;
        }
    }
    // A partial move: the old addresses are no longer ours to serve; the new ones are not
    // registered with this userfaultfd unless the kernel carried the registration, in which
    // case their faults are reported as outside every region.
    handle_remove(from, from + len, true);
}

void FaultServer::handle_event(const uffd_msg& m) {
    switch (m.event) {
    case UFFD_EVENT_PAGEFAULT: handle_fault(m.arg.pagefault.address, m.arg.pagefault.flags, m.arg.pagefault.feat.ptid); break;
    case UFFD_EVENT_REMOVE:
        ++stats_.remove_events;
        handle_remove(m.arg.remove.start, m.arg.remove.end, false);
        break;
    case UFFD_EVENT_UNMAP:
        ++stats_.unmap_events;
        handle_remove(m.arg.remove.start, m.arg.remove.end, true);
        break;
    case UFFD_EVENT_REMAP:
        ++stats_.remap_events;
        handle_remap(m.arg.remap.from, m.arg.remap.to, m.arg.remap.len);
        break;
    case UFFD_EVENT_FORK:
        // The child's memory is not ours to serve: drop its userfaultfd.
        ++stats_.fork_events;
        ::close(static_cast<int>(m.arg.fork.ufd));
        break;
    default: break;
    }
}

void FaultServer::drain_events() {
    std::array<uffd_msg, 64> msgs{};
    for (;;) {
        size_t n = uffd_.read_events(msgs);
        if (n == 0) return;
        for (size_t i = 0; i < n; ++i) {
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT) queued_faults_.push_back(msgs[i]);
            else handle_event(msgs[i]);
        }
    }
}

void FaultServer::handle_pending() {
    std::array<uffd_msg, 64> msgs{};
    for (;;) {
        while (!queued_faults_.empty()) {
            uffd_msg m = queued_faults_.front();
            queued_faults_.pop_front();
            handle_event(m);
        }
        size_t n = uffd_.read_events(msgs);
        if (n == 0 && queued_faults_.empty()) return;
        for (size_t i = 0; i < n; ++i) handle_event(msgs[i]);
    }
}

int FaultServer::serve(std::span<const int> extra_fds, const std::atomic<bool>* stop, int timeout_ms) {
    uint64_t t0 = mono_ns();
    std::vector<pollfd> fds;
    fds.push_back({uffd_.fd(), POLLIN, 0});
    for (int fd : extra_fds) fds.push_back({fd, POLLIN, 0});
    int result = -2;
    uint64_t idle_ms = 0, spin_until = 0;  // spin_until: ServerOptions::spin_us after a batch
    struct Release {  // the cores may halt again however serve() ends, an error too
        sys::IdlePolling* p;
        ~Release() {
            if (p) p->release();
        }
    } release{idle_poll_.get()};
    for (;;) {
        if (stop && stop->load()) { result = -1; break; }
        int slice = stop ? 100 : timeout_ms;
        if (timeout_ms >= 0 && slice > timeout_ms) slice = timeout_ms;
        const bool spinning = spin_until != 0 && mono_ns() < spin_until;
        if (!spinning && idle_poll_) idle_poll_->release();  // the cores may halt while this sleeps
        int n = ::poll(fds.data(), fds.size(), spinning ? 0 : slice);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (n == 0) {
            if (spinning) continue;
            spin_until = 0;
            idle_ms += static_cast<uint64_t>(slice);
            if (timeout_ms >= 0 && idle_ms >= static_cast<uint64_t>(timeout_ms)) break;
            continue;
        }
        idle_ms = 0;
        if (fds[0].revents & (POLLERR | POLLNVAL)) throw Error("userfaultfd: poll reports an error on the descriptor");
        if (fds[0].revents & POLLIN) {
            if (spinning) ++stats_.spin_batches;
            // Idle cores poll from the batch's start: its fetches wake the store's server,
            // and its installs the guest.
            if (idle_poll_) idle_poll_->hold();
            handle_pending();
            if (on_batch) on_batch(stats());
            if (opt_.spin_us > 0) spin_until = mono_ns() + static_cast<uint64_t>(opt_.spin_us) * 1000;
        }
        bool other = false;
        for (size_t i = 1; i < fds.size(); ++i)
            if (fds[i].revents) { result = static_cast<int>(i - 1); other = true; break; }
        if (other) {
            handle_pending();  // serve what is already queued before reporting
            break;
        }
    }
    stats_.serve_ns += mono_ns() - t0;
    return result;
}

// Map a piece's source bytes into this process before UFFDIO_COPY reads them (see resolve):
// MADV_POPULATE_READ, not a touch per page, so that a source that went away (a part file
// truncated under the restore) is EFAULT here instead of SIGBUS. False when it cannot be read.
bool FaultServer::populate_source(const std::byte* data, uint64_t bytes) {
    auto at = reinterpret_cast<uintptr_t>(data), lo = at & ~uintptr_t(4095);
    return ::madvise(reinterpret_cast<void*>(lo), bytes + (at - lo), 22 /* MADV_POPULATE_READ */) == 0 || errno != EFAULT;
}

void FaultServer::install_share(std::span<const PageRange> ranges, InstallCounts& c, std::byte* scratch,
                                uint64_t scratch_bytes) {
    const uint64_t ps = source_.page_size();
    for (const PageRange& pr : ranges)
        for (const AddrRange& ar : map_.addresses_of(pr.first_page * ps, pr.pages * ps)) {
            const int r = map_.find(ar.start);
            const Region& R = map_.regions()[static_cast<size_t>(r)];
            if (R.page_size != 4096) return;
            const uint64_t end = ar.start + ar.len;
            for (uint64_t a = ar.start; a < end;) {
                if (state(r, a) != kMissing) {
                    a += 4096;
                    continue;
                }
                uint64_t b = a + 4096;
                while (b < end && state(r, b) == kMissing && b - a < opt_.max_ioctl_bytes) b += 4096;
                for (uint64_t at = a; at < b;) {
                    Piece p = source_.read(R.offset + (at - R.base), std::min(b - at, scratch_bytes), scratch);
                    p.bytes = std::min(p.bytes, b - at);
                    if (p.bytes == 0) return;
                    Result res;
                    if (p.zero() && opt_.use_zeropage) {
                        res = uffd_.zeropage(at, p.bytes, opt_.wake_installs);
                    } else {
                        if (p.zero()) return;  // zeros by copy: left to the serial pass
                        // A source that cannot be read: left to the serial pass, which says so.
                        if (opt_.prefault_source && !populate_source(p.data, p.bytes)) return;
                        res = uffd_.copy(at, p.data, p.bytes, opt_.wake_installs, false);
                    }
                    for (uint64_t x = at; x < at + res.bytes; x += 4096) state(r, x) = kPresent;
                    (p.zero() ? c.zeroed : c.copied) += res.bytes / 4096;
                    if (!p.zero()) c.bytes += res.bytes;
                    if (res.status == Status::done) at += p.bytes;
                    else if (res.status == Status::exists) {
                        ++c.eexist;
                        state(r, at + res.bytes) = kPresent;
                        at += res.bytes + 4096;
                    } else {
                        return;  // EAGAIN (events pending) or gone: the serial pass sorts it out
                    }
                }
                a = b;
            }
        }
}

uint64_t FaultServer::install(std::span<const PageRange> ranges) {
    uint64_t t0 = mono_ns();
    uint64_t before = stats_.eager_pages_copied + stats_.eager_pages_zeroed;
    uint64_t ps = source_.page_size();
    uint64_t total = 0;
    for (const PageRange& pr : ranges) total += pr.pages;
    if (opt_.install_threads > 1 && total >= 256 && ps == 4096 && source_.concurrent_reads()) {
        // Batches of up to 64 pages in the given order, taken one at a time by whichever thread is
        // free. The caller works through them at once; a helper that gets a CPU late (a new
        // thread starts after ~0.1 ms here when the machine is quiet, after milliseconds when
        // the other CPU is busy) takes fewer, or none, and nothing waits for it to start —
        // only for a batch it holds. It is detached: it owns its share of the job, and touches
        // this server only while it holds a batch, which the caller waits for.
        struct Job {
            std::vector<PageRange> pieces;  // the ranges, long ones cut into 64-page pieces
            std::vector<std::span<const PageRange>> batches;
            std::atomic<size_t> next{0};
            std::atomic<unsigned> in_flight{0};
            std::vector<InstallCounts> counts;
            std::vector<uint64_t> taken;
        };
        auto job = std::make_shared<Job>();
        constexpr uint64_t kBatch = 64;  // pages
        for (const PageRange& pr : ranges)  // a long run (a heap written whole) is shared too
            for (uint64_t at = 0; at < pr.pages; at += kBatch)
                job->pieces.push_back({pr.first_page + at, std::min(kBatch, pr.pages - at)});
        const std::span<const PageRange> pieces(job->pieces);
        for (size_t from = 0, i = 0; i < pieces.size(); from = i) {
            uint64_t pages = 0;
            while (i < pieces.size() && (pages == 0 || pages + pieces[i].pages <= kBatch)) pages += pieces[i++].pages;
            job->batches.push_back(pieces.subspan(from, i - from));
        }
        const unsigned n = std::min(opt_.install_threads, 8u);
        job->counts.resize(n);
        job->taken.resize(n);
        auto work = [this](Job& j, unsigned t) {
            std::unique_ptr<std::byte[]> scratch;
            for (;;) {
                j.in_flight.fetch_add(1);
                const size_t b = j.next.fetch_add(1);
                if (b >= j.batches.size()) {
                    j.in_flight.fetch_sub(1);
                    return;
                }
                if (!scratch) scratch.reset(new std::byte[256 * 1024]);
                install_share(j.batches[b], j.counts[t], scratch.get(), 256 * 1024);
                ++j.taken[t];
                j.in_flight.fetch_sub(1);
            }
        };
        for (unsigned t = 1; t < n; ++t)
            std::thread([job, work, t] { work(*job, t); }).detach();
        work(*job, 0);
        // Every batch is taken; wait only for those still being installed.
        while (job->in_flight.load() != 0) std::this_thread::yield();
        uint64_t used = 0;
        for (unsigned t = 0; t < n; ++t) {
            stats_.eager_pages_copied += job->counts[t].copied;
            stats_.eager_pages_zeroed += job->counts[t].zeroed;
            stats_.bytes_copied += job->counts[t].bytes;
            stats_.eexist += job->counts[t].eexist;
            used += job->taken[t] > 0;  // threads that took a batch
        }
        stats_.install_threads = std::max(stats_.install_threads, used);
    }
    // The serial pass: everything (left) — pages a share installed are skipped.
    for (const PageRange& pr : ranges) {
        for (const AddrRange& ar : map_.addresses_of(pr.first_page * ps, pr.pages * ps)) {
            int r = map_.find(ar.start);
            const Region& R = map_.regions()[static_cast<size_t>(r)];
            uint64_t start = ar.start / R.page_size * R.page_size;
            uint64_t end = (ar.start + ar.len + R.page_size - 1) / R.page_size * R.page_size;
            for (uint64_t a = start; a < end;) {
                uint64_t len = std::min(opt_.max_ioctl_bytes, end - a);
                if (resolve(r, a, len, opt_.wake_installs, false, true)) a += len;
                else drain_events();
            }
        }
    }
    for (const Region& R : map_.regions()) uffd_.wake(R.base, R.size_bytes);
    stats_.eager_ns += mono_ns() - t0;
    return stats_.eager_pages_copied + stats_.eager_pages_zeroed - before;
}

void FaultServer::mark_present(std::span<const PageRange> ranges) {
    const uint64_t ps = source_.page_size();
    for (const PageRange& pr : ranges)
        for (const AddrRange& ar : map_.addresses_of(pr.first_page * ps, pr.pages * ps)) {
            const int r = map_.find(ar.start);
            const Region& R = map_.regions()[static_cast<size_t>(r)];
            // Only whole region pages: a huge page partly in place is still served whole.
            const uint64_t a0 = (ar.start + R.page_size - 1) / R.page_size * R.page_size;
            for (uint64_t a = a0; a + R.page_size <= ar.start + ar.len; a += R.page_size) state(r, a) = kPresent;
        }
}

LoadingSet FaultServer::loading_set(const ImageIdentity& image) const {
    LoadingSet ls;
    ls.image = image;
    ls.method = "uffd";
    ls.knows_writes = wp_active_;
    ls.has_time = true;
    ls.touches = touches_;
    ls.meta["uffd"] = {{"write_protect", wp_active_}, {"faults", stats_.faults}, {"wp_faults", stats_.wp_faults},
                       {"foreign_faults", stats_.foreign_faults}};
    nlohmann::json limits = nlohmann::json::array();
    limits.push_back("pages installed eagerly before or while recording do not fault and are not seen");
    if (!wp_active_)
        limits.push_back("no write-protect: a write after a page's first read is not seen; only write-first pages are marked written");
    if (stats_.foreign_faults)
        limits.push_back(std::to_string(stats_.foreign_faults) +
                         " first touches came from kernel workers (KVM async page faults), which always ask for write "
                         "access: recorded as writes, though the guest may only have read them");
    ls.meta["limitations"] = limits;
    return ls;
}

}  // namespace snap::uffd

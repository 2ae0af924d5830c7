// SPDX-License-Identifier: Apache-2.0
// PartRefs and the PageSource over a placed artifact's parts.
#include "source.hpp"

#include "common/error.hpp"
#include "common/tier.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

namespace snap::restore {

namespace {
// A file whose MAP_PRIVATE mapping userfaultfd can register (MISSING faults on its holes):
// shmem (tmpfs, /dev/shm) and hugetlbfs. A DAX or block file system reads holes as zeros
// without a fault, so a layout file there cannot serve ZERO and COLD on demand.
bool uffd_mappable(const std::string& path) {
    struct statfs fs {};
    if (::statfs(path.c_str(), &fs) != 0) return false;
    return fs.f_type == TMPFS_MAGIC || fs.f_type == HUGETLBFS_MAGIC;
}
// Private memory for a part's bytes, filled once and read many times: transparent huge pages
// where the kernel gives them (one fault per 2 MiB instead of per 4 KiB while it is filled).
void* private_buffer(uint64_t bytes, const std::string& what) {
    void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw_errno("mmap anonymous for " + what);
    // 4 KiB pages, not transparent huge pages: a THP's first fault takes a whole free 2 MiB
    // block, which hosts with free page reporting have handed back to the hypervisor (0.2-6.5 ms
    // to get it back here). reap reading a 512 MiB working set: 263-1339 ms with THP, 497-633
    // without (bench/restore_scale.sh 1). Advice only.
    (void)::madvise(m, bytes, MADV_NOHUGEPAGE);
    return m;
}
}  // namespace

std::vector<PartRef> part_refs(const placed::PlacedReader& r) {
    std::vector<PartRef> refs;
    for (const auto& p : r.parts()) {
        PartRef ref{p.cls, p.path, p.offset, p.compression == placed::Compression::none, {},
                    p.compression == placed::Compression::chunks};
        if (!p.layout_path.empty() && uffd_mappable(p.layout_path)) ref.layout_path = p.layout_path;
        refs.push_back(std::move(ref));
    }
    return refs;
}

PlacedSource::PlacedSource(const placed::PlacedReader& r, const pool::ReadOptions& pool_options)
    : size_(r.image().size_bytes), page_size_(r.page_size()) {
    std::array<int, kPageClasses> index{-1, -1, -1, -1};
    for (const auto& p : r.parts()) {
        index[static_cast<int>(p.cls)] = static_cast<int>(parts_.size());
        parts_.push_back(std::make_unique<placed::PartSource>(p, pool_options));
        pread_.push_back(!tier::byte_addressable(r.tier_of(p).kind) && p.compression == placed::Compression::none);
        if (pread_.back()) parts_.back()->advise_random();  // read by demand faults, piece by piece
    }
    std::vector<Span> ext;
    for (const auto& e : r.plan().extents) {
        int pi = index[static_cast<int>(e.cls)];
        if (pi < 0) throw BadInput(r.name(), std::string("an extent of class ") + class_name(e.cls) + " has no part");
        ext.push_back({e.image_page, e.pages, pi, e.data_page * uint64_t(page_size_)});
    }
    std::sort(ext.begin(), ext.end(), [](const Span& a, const Span& b) { return a.first_page < b.first_page; });
    // Fill the holes between extents with zero spans, so a lookup always finds a span.
    uint64_t at = 0;
    for (const auto& e : ext) {
        if (e.first_page < at) throw BadInput(r.name(), "overlapping extents");
        if (e.first_page > at) spans_.push_back({at, e.first_page - at, -1, 0});
        spans_.push_back(e);
        at = e.first_page + e.pages;
    }
    const uint64_t pages = size_ / page_size_;
    if (at < pages) spans_.push_back({at, pages - at, -1, 0});
}

PlacedSource::~PlacedSource() {
    for (auto& l : loaded_parts_)
        if (l.data) ::munmap(l.data, l.bytes);
}

namespace {
// One part file read front to back: O_DIRECT where the file system takes it (open or the first
// read may refuse: tmpfs before 6.6, an unaligned part offset), buffered otherwise.
class SequentialFile {
public:
    explicit SequentialFile(const std::string& path) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (fd_ < 0) reopen_buffered();
    }
    ~SequentialFile() {
        if (fd_ >= 0) ::close(fd_);
    }
    SequentialFile(const SequentialFile&) = delete;
    SequentialFile& operator=(const SequentialFile&) = delete;
    void read(std::byte* dst, uint64_t len, uint64_t at) {
        while (len) {
            ssize_t n = ::pread(fd_, dst, len, off_t(at));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EINVAL && direct_) {
                reopen_buffered();
                continue;
            }
            if (n < 0) throw BadInput(path_, std::string("read: ") + std::strerror(errno));
            if (n == 0) throw BadInput(path_, "part file is truncated");
            dst += n;
            at += uint64_t(n);
            len -= uint64_t(n);
        }
    }

private:
    void reopen_buffered() {
        if (fd_ >= 0) ::close(fd_);
        direct_ = false;
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw BadInput(path_, std::string("cannot open part file: ") + std::strerror(errno));
    }
    std::string path_;
    int fd_ = -1;
    bool direct_ = true;
};
}  // namespace

uint64_t PlacedSource::install_hot_parts(uffd::FaultServer& server, std::span<const uffd::PageRange> eager,
                                         uint64_t window_bytes) {
    loaded_parts_.resize(parts_.size());
    window_bytes = std::max<uint64_t>(page_size_, window_bytes / page_size_ * page_size_);  // whole pages
    auto hot = [&](size_t i) {
        const placed::Part& p = parts_[i]->part();
        return p.cls != PageClass::cold && p.raw_bytes > 0 && !loaded_parts_[i].data;
    };
    // The eager set by image page, merged: each window installs only its share of it.
    std::vector<uffd::PageRange> want(eager.begin(), eager.end());
    sort_and_merge(want);
    // The windows: the parts front to back, one after the other, cut into windows of
    // window_bytes (a window may hold the end of one part and the start of the next: a small
    // working set is one window, read and installed at once); each part's spans in file order.
    // A compressed or pool part is cut only between its units (frames, chunks), and a window
    // holds at least the largest of them.
    struct Piece {
        size_t part;
        uint64_t offset, bytes, at;  // part bytes [offset, offset+bytes) at `at` in the window
    };
    for (size_t i = 0; i < parts_.size(); ++i)
        if (hot(i)) window_bytes = std::max(window_bytes, parts_[i]->max_unit_bytes());
    std::vector<std::vector<Piece>> wins;
    uint64_t fill = window_bytes;
    std::vector<std::vector<const Span*>> by_offset(parts_.size());
    std::vector<bool> windowed(parts_.size(), false);
    for (size_t i = 0; i < parts_.size(); ++i) {
        if (!hot(i)) continue;
        windowed[i] = true;
        const uint64_t raw = parts_[i]->part().raw_bytes;
        for (uint64_t at = 0; at < raw;) {
            if (fill == window_bytes) {
                wins.emplace_back();
                fill = 0;
            }
            const uint64_t n = parts_[i]->unit_start(std::min(at + window_bytes - fill, raw)) - at;
            if (n == 0) {  // not one more unit fits: the next window
                fill = window_bytes;
                continue;
            }
            wins.back().push_back({i, at, n, fill});
            fill += n;
            at += n;
        }
    }
    for (const Span& sp : spans_)
        if (sp.part >= 0) by_offset[size_t(sp.part)].push_back(&sp);
    for (auto& v : by_offset)
        std::sort(v.begin(), v.end(), [](const Span* x, const Span* y) { return x->part_offset < y->part_offset; });

    uint64_t installed = 0;
    if (!wins.empty()) {
        struct Buffers {
            std::byte* b[2] = {nullptr, nullptr};
            uint64_t bytes;
            ~Buffers() {
                for (auto* p : b)
                    if (p) ::munmap(p, bytes);
            }
        } buf{{}, window_bytes};
        for (auto*& p : buf.b) p = static_cast<std::byte*>(private_buffer(window_bytes, "the working-set windows"));
        // Uncompressed parts are files read directly; the others through their PartSource.
        std::vector<std::unique_ptr<SequentialFile>> files(parts_.size());
        for (const auto& w : wins)
            for (const Piece& pc : w)
                if (!files[pc.part] && parts_[pc.part]->part().compression == placed::Compression::none)
                    files[pc.part] = std::make_unique<SequentialFile>(parts_[pc.part]->part().path);
        auto read_window = [&](size_t k) {
            for (const Piece& pc : wins[k])
                if (files[pc.part]) files[pc.part]->read(buf.b[k % 2] + pc.at, pc.bytes, parts_[pc.part]->part().offset + pc.offset);
                else parts_[pc.part]->read_span(pc.offset, pc.bytes, buf.b[k % 2] + pc.at);
        };
        const uint64_t ps = page_size_;
        std::future<void> next = std::async(std::launch::async, read_window, size_t{0});
        for (size_t k = 0; k < wins.size(); ++k) {
            next.get();  // window k is in buf[k % 2]; window k-1's installs are done with the other
            if (k + 1 < wins.size()) next = std::async(std::launch::async, read_window, k + 1);
            // The window's pages cut to the eager set, in address order, neighbours merged (as
            // exec_installs gives them before the guest runs).
            std::vector<uffd::PageRange> ranges;
            windows_.clear();
            for (const Piece& pc : wins[k]) {
                windows_.push_back({int(pc.part), pc.offset, pc.bytes, buf.b[k % 2] + pc.at});
                const auto& sp = by_offset[pc.part];
                auto it = std::upper_bound(sp.begin(), sp.end(), pc.offset,
                                           [](uint64_t off, const Span* s) { return off < s->part_offset; });
                if (it != sp.begin()) --it;
                for (; it != sp.end() && (*it)->part_offset < pc.offset + pc.bytes; ++it) {
                    const Span& s = **it;
                    const uint64_t lo = std::max(s.part_offset, pc.offset),
                                   hi = std::min(s.part_offset + s.pages * ps, pc.offset + pc.bytes);
                    if (lo >= hi) continue;
                    const uint64_t p0 = s.first_page + (lo - s.part_offset) / ps, p1 = s.first_page + (hi - s.part_offset) / ps;
                    auto e = std::upper_bound(want.begin(), want.end(), p0, [](uint64_t p, const auto& r) { return p < r.first_page; });
                    if (e != want.begin()) --e;
                    for (; e != want.end() && e->first_page < p1; ++e) {
                        const uint64_t x = std::max(p0, e->first_page), y = std::min(p1, e->first_page + e->pages);
                        if (x < y) ranges.push_back({x, y - x});
                    }
                }
            }
            sort_and_merge(ranges);
            try {
                // Every range lies in this window: reads hand out pointers into it, so the
                // install may use its helper thread even when a part is compressed or pooled.
                window_reads_ = true;
                installed += server.install(ranges);
                window_reads_ = false;
            } catch (...) {
                window_reads_ = false;
                windows_.clear();
                if (next.valid()) next.wait();
                throw;
            }
            for (const Piece& pc : wins[k]) {
                loaded_ += pc.bytes;
                if (parts_[pc.part]->part().compression == placed::Compression::zstd) decompressed_ += pc.bytes;
            }
            windows_.clear();
        }
    }
    // What no window held: ZERO pages of the eager set.
    std::vector<uffd::PageRange> rest;
    for (const auto& w : spans_.empty() ? std::vector<uffd::PageRange>{} : want) {
        auto it = std::upper_bound(spans_.begin(), spans_.end(), w.first_page,
                                   [](uint64_t p, const Span& s) { return p < s.first_page; });
        for (--it; it != spans_.end() && it->first_page < w.end_page(); ++it) {
            if (it->part >= 0 && windowed[size_t(it->part)]) continue;
            const uint64_t a = std::max(w.first_page, it->first_page), b = std::min(w.end_page(), it->first_page + it->pages);
            if (a < b) rest.push_back({a, b - a});
        }
    }
    sort_and_merge(rest);
    return installed + server.install(rest);
}

void PlacedSource::populate_rw(bool ro) {
    loaded_parts_.resize(parts_.size());
    for (size_t i = 0; i < parts_.size(); ++i) {
        auto& ps = parts_[i];
        const placed::Part& part = ps->part();
        const bool hot = part.cls == PageClass::rw || (ro && part.cls == PageClass::ro);
        if (!hot || part.raw_bytes == 0 || loaded_parts_[i].data) continue;
        auto m = ps->mapped();
        if (m.empty()) {
            void* a = private_buffer(part.raw_bytes, part.path);
            try {
                ps->read_all(static_cast<std::byte*>(a));
            } catch (...) {
                ::munmap(a, part.raw_bytes);
                throw;
            }
            loaded_parts_[i] = {static_cast<std::byte*>(a), part.raw_bytes};
            loaded_ += part.raw_bytes;
            continue;
        }
        if (part.cls != PageClass::rw) continue;
        // Page-align the start (the part may begin inside the file); advice only.
        auto start = reinterpret_cast<uintptr_t>(m.data()) & ~uintptr_t(4095);
        (void)::madvise(reinterpret_cast<void*>(start), m.size() + (reinterpret_cast<uintptr_t>(m.data()) - start),
                        22 /* MADV_POPULATE_READ */);
    }
}

nlohmann::json PlacedSource::pool_json() const {
    nlohmann::json classes = nlohmann::json::object();
    pool::ReadStats sum;
    for (auto& ps : parts_) {
        auto* pr = ps->pool_reader();
        if (!pr) continue;
        auto s = pr->stats();
        const uint64_t demanded = s.demand_chunks + s.cache_hits;  // chunks reads asked for
        classes[class_name(ps->part().cls)] = {
            {"demand_fetches", s.demand_fetches},   {"demand_chunks", s.demand_chunks},
            {"demand_bytes", s.demand_bytes},       {"prefetched_chunks", s.prefetched_chunks},
            {"prefetched_bytes", s.prefetched_bytes}, {"prefetch_hits", s.prefetch_hits},
            {"cache_hits", s.cache_hits},           {"waited_fetches", s.waited},
            {"bulk_chunks", s.bulk_chunks},         {"bulk_bytes", s.bulk_bytes},
            {"demand_ns", s.demand_ns},             {"bulk_ns", s.bulk_ns},
            {"prefetch_hit_rate", s.prefetched_chunks ? double(s.prefetch_hits) / double(s.prefetched_chunks) : 0.0},
            {"read_chunks", demanded}};
        if (!pr->prefetch_error().empty()) classes[class_name(ps->part().cls)]["prefetch_error"] = pr->prefetch_error();
        sum.demand_fetches += s.demand_fetches;
        sum.demand_ns += s.demand_ns;
        sum.bulk_ns += s.bulk_ns;
        sum.demand_bytes += s.demand_bytes;
        sum.bulk_bytes += s.bulk_bytes;
        sum.prefetched_bytes += s.prefetched_bytes;
    }
    if (classes.empty()) return nullptr;
    return {{"classes", classes},
            {"demand_fetches", sum.demand_fetches},
            {"fault_bytes", sum.demand_bytes},        // fetched while a fault waited
            {"before_resume_bytes", sum.bulk_bytes},  // hot parts fetched in bulk before the VMM ran
            {"demand_ns", sum.demand_ns},             // time faults waited for fetches
            {"bulk_ns", sum.bulk_ns},
            {"fetched_bytes", sum.demand_bytes + sum.bulk_bytes + sum.prefetched_bytes}};
}

bool PlacedSource::concurrent_reads() const {
    if (window_reads_) return true;  // a window's installs read only the window (install_hot_parts)
    for (size_t i = 0; i < parts_.size(); ++i) {
        const bool loaded = i < loaded_parts_.size() && loaded_parts_[i].data;
        if (!loaded && parts_[i]->part().compression != placed::Compression::none) return false;
    }
    return true;
}

uffd::Piece PlacedSource::read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) {
    const uint64_t page = offset / page_size_;
    if (offset >= size_ || spans_.empty()) return {nullptr, max_bytes};
    auto it = std::upper_bound(spans_.begin(), spans_.end(), page, [](uint64_t p, const Span& s) { return p < s.first_page; });
    const Span& s = *(it - 1);
    const uint64_t into = page - s.first_page;
    const uint64_t bytes = std::min<uint64_t>(max_bytes, (s.pages - into) * page_size_);
    if (s.part < 0) return {nullptr, bytes};
    const uint64_t at = s.part_offset + into * page_size_;
    for (const Window& w : windows_)
        if (s.part == w.part && at >= w.offset && at < w.offset + w.bytes)
            return {w.data + (at - w.offset), std::min(bytes, w.offset + w.bytes - at)};
    if (size_t(s.part) < loaded_parts_.size() && loaded_parts_[s.part].data) return {loaded_parts_[s.part].data + at, bytes};
    placed::PartSource& src = *parts_[s.part];
    if (pread_[s.part]) {  // a file tier: exactly these bytes, one I/O
        src.pread(at, bytes, scratch);
        return {scratch, bytes};
    }
    auto mapped = src.mapped();
    if (!mapped.empty()) return {mapped.data() + at, bytes};
    src.read(at, bytes, scratch);
    if (src.part().compression == placed::Compression::zstd) decompressed_ += bytes;  // pool parts: "pool" in the report
    return {scratch, bytes};
}

}  // namespace snap::restore

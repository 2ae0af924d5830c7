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

uint64_t PlacedSource::load_hot_parts() {
    loaded_parts_.resize(parts_.size());
    uint64_t total = 0;
    for (size_t i = 0; i < parts_.size(); ++i) {
        const placed::Part& part = parts_[i]->part();
        if (part.cls == PageClass::cold || part.raw_bytes == 0 || loaded_parts_[i].data) continue;
        void* m = private_buffer(part.raw_bytes, part.path);
        auto* dst = static_cast<std::byte*>(m);
        if (part.compression != placed::Compression::none) {
            parts_[i]->read_all(dst);
        } else {
            int fd = ::open(part.path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
            if (fd < 0) fd = ::open(part.path.c_str(), O_RDONLY | O_CLOEXEC);  // tmpfs: no O_DIRECT
            if (fd < 0) throw BadInput(part.path, std::string("cannot open part file: ") + std::strerror(errno));
            uint64_t done = 0;
            while (done < part.raw_bytes) {
                ssize_t n = ::pread(fd, dst + done, part.raw_bytes - done, off_t(part.offset + done));
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    int e = n < 0 ? errno : 0;
                    ::close(fd);
                    ::munmap(m, part.raw_bytes);
                    throw BadInput(part.path, e ? std::string("read: ") + std::strerror(e) : "part file is truncated");
                }
                done += uint64_t(n);
            }
            ::close(fd);
        }
        loaded_parts_[i] = {dst, part.raw_bytes};
        total += part.raw_bytes;
    }
    loaded_ += total;
    return total;
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
            {"before_resume_bytes", sum.bulk_bytes},  // hot parts fetched whole before the VMM ran
            {"demand_ns", sum.demand_ns},             // time faults waited for fetches
            {"bulk_ns", sum.bulk_ns},
            {"fetched_bytes", sum.demand_bytes + sum.bulk_bytes + sum.prefetched_bytes}};
}

bool PlacedSource::concurrent_reads() const {
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

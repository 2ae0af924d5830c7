// PartRefs and the PageSource over a placed artifact's parts.
#include "source.hpp"

#include "common/error.hpp"

#include <algorithm>
#include <cstring>

namespace snap::restore {

std::vector<PartRef> part_refs(const placed::PlacedReader& r) {
    std::vector<PartRef> refs;
    for (const auto& p : r.parts())
        refs.push_back({p.cls, p.path, p.offset, p.compression == placed::Compression::none});
    return refs;
}

PlacedSource::PlacedSource(const placed::PlacedReader& r) : size_(r.image().size_bytes), page_size_(r.page_size()) {
    std::array<int, kPageClasses> index{-1, -1, -1, -1};
    for (const auto& p : r.parts()) {
        index[static_cast<int>(p.cls)] = static_cast<int>(parts_.size());
        parts_.push_back(std::make_unique<placed::PartSource>(p));
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

uffd::Piece PlacedSource::read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) {
    const uint64_t page = offset / page_size_;
    if (offset >= size_ || spans_.empty()) return {nullptr, max_bytes};
    auto it = std::upper_bound(spans_.begin(), spans_.end(), page, [](uint64_t p, const Span& s) { return p < s.first_page; });
    const Span& s = *(it - 1);
    const uint64_t into = page - s.first_page;
    const uint64_t bytes = std::min<uint64_t>(max_bytes, (s.pages - into) * page_size_);
    if (s.part < 0) return {nullptr, bytes};
    placed::PartSource& src = *parts_[s.part];
    const uint64_t at = s.part_offset + into * page_size_;
    auto mapped = src.mapped();
    if (!mapped.empty()) return {mapped.data() + at, bytes};
    src.read(at, bytes, scratch);
    decompressed_ += bytes;
    return {scratch, bytes};
}

}  // namespace snap::restore

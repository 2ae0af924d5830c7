// SPDX-License-Identifier: Apache-2.0
// Page sources over bytes in memory and over a plain image file (see source.hpp).
#include "source.hpp"

#include "common/error.hpp"
#include "common/image.hpp"
#include "common/split.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace snap::uffd {

Piece stretch_of(std::span<const std::byte> bytes, uint64_t offset, uint64_t max_bytes, uint32_t page_size,
                 bool detect_zero) {
    uint64_t size = bytes.size();
    if (offset >= size) return {nullptr, max_bytes};
    uint64_t end = std::min(offset + max_bytes, size);
    // Only whole pages are data; a partial last page (sources refuse such images) reads as zero.
    end = offset + (end - offset) / page_size * page_size;
    if (end == offset) return {nullptr, page_size};
    auto zero_at = [&](uint64_t o) { return detect_zero && is_zero_page(bytes.data() + o, page_size); };
    bool zero = zero_at(offset);
    uint64_t o = offset + page_size;
    while (o < end && zero_at(o) == zero) o += page_size;
    if (zero && o == end) o = offset + max_bytes;  // end < offset+max only at the image end: zero beyond it
    return {zero ? nullptr : bytes.data() + offset, o - offset};
}

Piece MemorySource::read(uint64_t offset, uint64_t max_bytes, std::byte*) {
    return stretch_of(bytes_, offset, max_bytes, page_size_, detect_zero_);
}

ImageFileSource::ImageFileSource(const std::string& path, uint32_t page_size, bool detect_zero)
    : page_size_(page_size), detect_zero_(detect_zero) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("open " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        throw_errno("stat " + path, err);
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0 || size_ % page_size != 0) {
        ::close(fd);
        throw BadInput(path, "image size " + std::to_string(size_) + " is not a positive multiple of the page size " +
                                 std::to_string(page_size));
    }
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw_errno("mmap " + path, err);
    data_ = static_cast<std::byte*>(p);
}

ImageFileSource::~ImageFileSource() {
    if (data_) ::munmap(data_, size_);
}

Piece ImageFileSource::read(uint64_t offset, uint64_t max_bytes, std::byte*) {
    return stretch_of({data_, size_}, offset, max_bytes, page_size_, detect_zero_);
}

SplitSource::SplitSource(const SplitReader& split)
    : size_(split.image().size_bytes), page_size_(split.page_size()) {
    for (const Extent& e : split.plan().extents) spans_.push_back({e.image_page, e.pages, split.extent_data(e).data()});
    std::sort(spans_.begin(), spans_.end(), [](const Span& a, const Span& b) { return a.first_page < b.first_page; });
}

Piece SplitSource::read(uint64_t offset, uint64_t max_bytes, std::byte*) {
    uint64_t page = offset / page_size_, want = max_bytes / page_size_;
    auto it = std::upper_bound(spans_.begin(), spans_.end(), page, [](uint64_t p, const Span& s) { return p < s.first_page; });
    if (it != spans_.begin() && page < std::prev(it)->first_page + std::prev(it)->pages) {
        const Span& s = *std::prev(it);
        uint64_t n = std::min(want, s.first_page + s.pages - page);
        return {s.data + (page - s.first_page) * page_size_, n * page_size_};
    }
    // Not in any extent: ZERO (or beyond the image) up to the next extent.
    uint64_t next = it == spans_.end() ? UINT64_MAX : it->first_page;
    return {nullptr, std::min(want, next - page) * page_size_};
}

}  // namespace snap::uffd

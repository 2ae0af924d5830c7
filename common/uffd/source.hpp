// SPDX-License-Identifier: Apache-2.0
// Where a fault server gets page bytes from. A PageSource answers for image offsets (not
// guest addresses): "these bytes" or "zero", for the longest stretch of one kind that starts
// at the offset, so that the server can resolve a whole granule with few ioctls. The bytes
// may live in the source (a mapped image or artifact: handed to UFFDIO_COPY without a copy)
// or be produced into the caller's scratch buffer (decompression, a remote fetch).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace snap {
class SplitReader;
}

namespace snap::uffd {

struct Piece {
    const std::byte* data = nullptr;  // nullptr: the stretch is all zero
    uint64_t bytes = 0;               // > 0, a multiple of the page size, <= the asked length
    bool zero() const { return data == nullptr; }
};

class PageSource {
public:
    virtual ~PageSource() = default;
    virtual uint64_t size_bytes() const = 0;  // the image size; beyond it everything reads as zero
    virtual uint32_t page_size() const = 0;
    // The stretch starting at image offset `offset` (page aligned), at most `max_bytes` long
    // (page multiple). `scratch` holds max_bytes bytes the source may fill and point into.
    // Called from one thread at a time, unless concurrent_reads() says otherwise.
    virtual Piece read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) = 0;
    // read() may be called from several threads at once (each with its own scratch).
    virtual bool concurrent_reads() const { return false; }
};

// Bytes in memory (tests, or an image already mapped by the caller). Not owned.
class MemorySource : public PageSource {
public:
    MemorySource(std::span<const std::byte> bytes, uint32_t page_size = 4096, bool detect_zero = true)
        : bytes_(bytes), page_size_(page_size), detect_zero_(detect_zero) {}
    uint64_t size_bytes() const override { return bytes_.size(); }
    uint32_t page_size() const override { return page_size_; }
    Piece read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) override;

private:
    std::span<const std::byte> bytes_;
    uint32_t page_size_;
    bool detect_zero_;
};

// A plain memory image file, mapped read-only. With detect_zero, all-zero pages are reported
// as zero (resolved with UFFDIO_ZEROPAGE: no copy, no memory until written).
class ImageFileSource : public PageSource {
public:
    explicit ImageFileSource(const std::string& path, uint32_t page_size = 4096, bool detect_zero = true);
    ~ImageFileSource() override;
    ImageFileSource(const ImageFileSource&) = delete;
    ImageFileSource& operator=(const ImageFileSource&) = delete;
    uint64_t size_bytes() const override { return size_; }
    uint32_t page_size() const override { return page_size_; }
    Piece read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) override;
    const std::byte* data() const { return data_; }

private:
    std::byte* data_ = nullptr;
    uint64_t size_ = 0;
    uint32_t page_size_;
    bool detect_zero_;
};

// A split artifact (snap-split): ZERO pages are zero, every other page comes from its
// extent's page data inside the artifact (mapped; handed to UFFDIO_COPY without a copy).
// Stretches stop at extent ends. The reader must outlive the source.
class SplitSource : public PageSource {
public:
    explicit SplitSource(const SplitReader& split);
    uint64_t size_bytes() const override { return size_; }
    uint32_t page_size() const override { return page_size_; }
    Piece read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) override;

private:
    struct Span {
        uint64_t first_page, pages;
        const std::byte* data;
    };
    std::vector<Span> spans_;  // image order
    uint64_t size_;
    uint32_t page_size_;
};

// The shared rule: the longest same-kind stretch of `bytes` (a mapped image) from offset.
Piece stretch_of(std::span<const std::byte> bytes, uint64_t offset, uint64_t max_bytes, uint32_t page_size,
                 bool detect_zero);

}  // namespace snap::uffd

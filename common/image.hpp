// SPDX-License-Identifier: Apache-2.0
// The memory image: raw guest RAM, read-only to every tool. Page n is bytes [n·P, (n+1)·P).
// The image's identity is its size, page size and content fingerprint (XXH3-64 over the
// whole file: the value `xxhsum -H3 IMAGE` prints).
#pragma once
#include "file.hpp"

#include <cstdint>
#include <string>

namespace snap {

constexpr uint32_t kDefaultPageSize = 4096;

struct ImageIdentity {
    uint64_t size_bytes = 0;
    uint32_t page_size = kDefaultPageSize;
    uint64_t fingerprint = 0;
    uint64_t pages() const { return page_size ? size_bytes / page_size : 0; }
    bool operator==(const ImageIdentity&) const = default;
};

// True when every byte of the page is zero.
bool is_zero_page(const std::byte* page, size_t page_size) noexcept;

class Image {
public:
    // Throws BadInput if the file is empty or not a whole number of pages.
    Image(const std::string& path, uint32_t page_size = kDefaultPageSize);
    const std::string& path() const { return file_.path(); }
    uint32_t page_size() const { return page_size_; }
    uint64_t pages() const { return file_.size() / page_size_; }
    uint64_t size_bytes() const { return file_.size(); }
    const std::byte* page(uint64_t n) const { return file_.data() + n * page_size_; }
    const std::byte* data() const { return file_.data(); }
    bool is_zero(uint64_t n) const { return is_zero_page(page(n), page_size_); }
    uint64_t fingerprint() const;  // computed once, then cached
    bool has_fingerprint() const { return have_fingerprint_; }
    // For readers that hash the whole image anyway while scanning it (one pass, not two).
    void remember_fingerprint(uint64_t fp) const {
        fingerprint_ = fp;
        have_fingerprint_ = true;
    }
    ImageIdentity identity() const { return {size_bytes(), page_size_, fingerprint()}; }
    void advise_sequential() const { file_.advise_sequential(); }

private:
    file::InputFile file_;
    uint32_t page_size_;
    mutable uint64_t fingerprint_ = 0;
    mutable bool have_fingerprint_ = false;
};

// Fingerprint a file by reading it (pread, no mapping) — used by recorders, which must not
// leave the image mapped or fault it in through a mapping of their own.
ImageIdentity identify_image_file(const std::string& path, uint32_t page_size = kDefaultPageSize);

}  // namespace snap

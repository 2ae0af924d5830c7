// SPDX-License-Identifier: Apache-2.0
// The memory image: raw guest RAM, read-only to every tool. Page n is bytes [n·P, (n+1)·P).
// The image's identity is its size, page size and content fingerprint (XXH3-64 over the
// whole file: the value `xxhsum -H3 IMAGE` prints). A fingerprint is hashed once per image:
// it is remembered beside the image's stamp in the verdict cache (verified.hpp) and looked up
// before hashing again, unless the caller asks for a rehash.
#pragma once
#include "file.hpp"

#include <cstdint>
#include <ctime>
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

// Where a fingerprint came from: read from the verdict cache, or hashed from the bytes.
enum class FingerprintSource : uint8_t { hashed, remembered };
const char* fingerprint_source_name(FingerprintSource s);  // "hashed", "remembered"

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
        source_ = FingerprintSource::hashed;
    }
    // Look the fingerprint up in the verdict cache by the stamp the image had when opened;
    // true if found (then has_fingerprint()).
    bool recall_fingerprint() const;
    // Store the fingerprint hashed from this image in the verdict cache, if the file still has
    // the stamp it had when opened (see verified::remember_content_digest). Call it once the
    // caller knows the image held still while it was read.
    bool keep_fingerprint() const;
    FingerprintSource fingerprint_source() const { return source_; }
    const std::optional<file::Stamp>& stamp() const { return file_.stamp(); }
    ImageIdentity identity() const { return {size_bytes(), page_size_, fingerprint()}; }
    void advise_sequential() const { file_.advise_sequential(); }

private:
    timespec opened_at_{};  // wall clock, before the stamp was taken (first: initialised first)
    file::InputFile file_;
    uint32_t page_size_;
    mutable uint64_t fingerprint_ = 0;
    mutable bool have_fingerprint_ = false;
    mutable FingerprintSource source_ = FingerprintSource::hashed;
};

struct ImageFingerprint {
    ImageIdentity identity;
    FingerprintSource source = FingerprintSource::hashed;
};

// Fingerprint a file by reading it (pread, no mapping; O_DIRECT where allowed, so that the
// page cache stays as it was) — used by recorders, which must not leave the image mapped or
// fault it in through a mapping of their own. The verdict cache is asked first by the file's
// stamp (unless rehash); a hash shows a progress line on a TTY and is remembered.
ImageFingerprint fingerprint_image_file(const std::string& path, uint32_t page_size = kDefaultPageSize,
                                        bool rehash = false);
// The same, always hashing (a caller that has just found the cache does not vouch for it, or
// was asked to verify).
ImageIdentity identify_image_file(const std::string& path, uint32_t page_size = kDefaultPageSize);

}  // namespace snap

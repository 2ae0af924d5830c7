// SPDX-License-Identifier: Apache-2.0
// Page-table state of another process over a virtual range: the PAGEMAP_SCAN ioctl on
// /proc/PID/pagemap (Linux 6.7+), with a fallback to pread of 64-bit pagemap entries.
// Debian's headers predate the ioctl, so its ABI is defined here from the kernel's
// Documentation/admin-guide/mm/pagemap.rst.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace snap::sys {

// --- PAGEMAP_SCAN ABI (include/uapi/linux/fs.h, Linux 6.7) ---
namespace pm {
constexpr uint64_t kWpAllowed = 1u << 0;
constexpr uint64_t kWritten = 1u << 1;
constexpr uint64_t kFile = 1u << 2;
constexpr uint64_t kPresent = 1u << 3;
constexpr uint64_t kSwapped = 1u << 4;
constexpr uint64_t kPfnZero = 1u << 5;
constexpr uint64_t kHuge = 1u << 6;
constexpr uint64_t kSoftDirty = 1u << 7;

struct PageRegion {
    uint64_t start, end, categories;
};
struct ScanArg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
static_assert(sizeof(PageRegion) == 24 && sizeof(ScanArg) == 96);
// _IOWR('f', 16, struct pm_scan_arg)
constexpr unsigned long kIoctl = (3ul << 30) | (sizeof(ScanArg) << 16) | ('f' << 8) | 16;
}  // namespace pm

// --- /proc/PID/pagemap entries (one little-endian u64 per virtual page) ---
struct PagemapEntry {
    bool present = false;
    bool swapped = false;
    bool file_or_shared_anon = false;  // bit 61: file page or shared anonymous
    bool exclusive = false;            // bit 56: mapped exclusively
    bool soft_dirty = false;           // bit 55
    uint64_t pfn = 0;                  // bits 0-54 when present (0 without CAP_SYS_ADMIN)
};
PagemapEntry decode_pagemap_entry(uint64_t raw) noexcept;

// What a scan reports for one run of pages.
enum class PageState : uint8_t {
    file,  // present, maps the file's page-cache page (read, or written through MAP_SHARED)
    anon,  // present or swapped, anonymous: a private copy-on-write copy (written)
};

// The state of a pagemap entry for our purpose; nullopt-like `false` when nothing is mapped.
bool classify_pagemap_entry(const PagemapEntry& e, PageState& out) noexcept;

// Scans one process's page tables. Opens /proc/PID/pagemap (the fd pins the mm it was opened
// on: reopen after an exec). Throws CapabilityError if the file cannot be opened for lack of
// permission, snap::Error if the process is gone.
class PagemapScanner {
public:
    explicit PagemapScanner(pid_t pid, bool allow_ioctl = true);
    ~PagemapScanner();
    PagemapScanner(const PagemapScanner&) = delete;
    PagemapScanner& operator=(const PagemapScanner&) = delete;

    // Calls visit(start, end, state) for every run of mapped pages in [start, end), in
    // address order (runs may repeat after a resumed ioctl; visitors must be idempotent).
    // Returns false if the process's mm is gone (exited meanwhile).
    using Visit = std::function<void(uint64_t start, uint64_t end, PageState state)>;
    bool scan(uint64_t start, uint64_t end, const Visit& visit);

    bool using_ioctl() const { return use_ioctl_; }
    uint64_t ioctl_calls() const { return ioctl_calls_; }

private:
    bool scan_ioctl(uint64_t start, uint64_t end, const Visit& visit);
    bool scan_pread(uint64_t start, uint64_t end, const Visit& visit);
    int fd_ = -1;
    pid_t pid_;
    bool use_ioctl_;
    uint64_t ioctl_calls_ = 0;
    std::vector<pm::PageRegion> vec_;
    std::vector<uint64_t> entries_;
};

}  // namespace snap::sys

// SPDX-License-Identifier: Apache-2.0
#include "pagemap.hpp"

#include "common/error.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace snap::sys {

static_assert(pm::kIoctl == _IOWR('f', 16, pm::ScanArg), "PAGEMAP_SCAN ioctl number");

PagemapEntry decode_pagemap_entry(uint64_t raw) noexcept {
    PagemapEntry e;
    e.present = (raw >> 63) & 1;
    e.swapped = (raw >> 62) & 1;
    e.file_or_shared_anon = (raw >> 61) & 1;
    e.exclusive = (raw >> 56) & 1;
    e.soft_dirty = (raw >> 55) & 1;
    e.pfn = e.present ? (raw & ((1ull << 55) - 1)) : 0;
    return e;
}

bool classify_pagemap_entry(const PagemapEntry& e, PageState& out) noexcept {
    if (!e.present && !e.swapped) return false;
    // In a private file mapping, anything that is not the file's page is a private copy.
    // A swap entry of a file page (migration) still carries bit 61.
    out = e.file_or_shared_anon ? PageState::file : PageState::anon;
    return true;
}

PagemapScanner::PagemapScanner(pid_t pid, bool allow_ioctl) : pid_(pid), use_ioctl_(allow_ioctl) {
    std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        int e = errno;
        if (e == ENOENT || e == ESRCH) throw Error("process " + std::to_string(pid) + " is gone (" + path + ")");
        if (e == EACCES || e == EPERM)
            throw CapabilityError(path + ": " + std::strerror(e),
                                  "reading another process's page tables needs ptrace access: run as root "
                                  "or as the owner of process " + std::to_string(pid));
        throw_errno(path, e);
    }
}

PagemapScanner::~PagemapScanner() {
    if (fd_ >= 0) ::close(fd_);
}

bool PagemapScanner::scan(uint64_t start, uint64_t end, const Visit& visit) {
    if (start >= end) return true;
    if (use_ioctl_) {
        errno = 0;
        bool ok = scan_ioctl(start, end, visit);
        if (ok || errno != ENOTTY) return ok;
        use_ioctl_ = false;  // kernel before 6.7: no PAGEMAP_SCAN
    }
    return scan_pread(start, end, visit);
}

bool PagemapScanner::scan_ioctl(uint64_t start, uint64_t end, const Visit& visit) {
    if (vec_.empty()) vec_.resize(4096);
    uint64_t cur = start;
    while (cur < end) {
        pm::ScanArg arg{};
        arg.size = sizeof arg;
        arg.start = cur;
        arg.end = end;
        arg.vec = reinterpret_cast<uint64_t>(vec_.data());
        arg.vec_len = vec_.size();
        arg.category_anyof_mask = pm::kPresent | pm::kSwapped;
        arg.return_mask = pm::kPresent | pm::kSwapped | pm::kFile;
        ++ioctl_calls_;
        int n = ::ioctl(fd_, pm::kIoctl, &arg);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOTTY || (errno == EINVAL && ioctl_calls_ == 1)) {
                errno = ENOTTY;
                return false;
            }
            if (errno == ESRCH) return false;  // the mm is gone
            throw_errno("PAGEMAP_SCAN on /proc/" + std::to_string(pid_) + "/pagemap");
        }
        for (int i = 0; i < n; ++i) {
            const auto& r = vec_[static_cast<size_t>(i)];
            visit(r.start, r.end, (r.categories & pm::kFile) ? PageState::file : PageState::anon);
        }
        // walk_end may stop short of `end` although every region was returned (FACTS.md):
        // resuming rescans a tail, which the idempotent visitor absorbs.
        if (arg.walk_end <= cur) break;
        cur = arg.walk_end;
    }
    errno = 0;
    return true;
}

bool PagemapScanner::scan_pread(uint64_t start, uint64_t end, const Visit& visit) {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    constexpr size_t kBatch = 65536;
    if (entries_.size() < kBatch) entries_.resize(kBatch);
    uint64_t run_start = 0, run_end = 0;
    PageState run_state = PageState::file;
    bool in_run = false;
    auto flush = [&] {
        if (in_run) visit(run_start, run_end, run_state);
        in_run = false;
    };
    for (uint64_t va = start; va < end;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(kBatch, (end - va + page - 1) / page));
        ssize_t n = ::pread(fd_, entries_.data(), want * 8, static_cast<off_t>(va / page * 8));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (errno == ESRCH) return false;
            throw_errno("read /proc/" + std::to_string(pid_) + "/pagemap");
        }
        if (n == 0) return false;  // the mm is gone
        size_t got = static_cast<size_t>(n) / 8;
        for (size_t i = 0; i < got; ++i, va += page) {
            PageState st;
            if (!classify_pagemap_entry(decode_pagemap_entry(entries_[i]), st)) {
                flush();
                continue;
            }
            if (in_run && run_end == va && run_state == st) {
                run_end = va + page;
            } else {
                flush();
                in_run = true;
                run_start = va;
                run_end = va + page;
                run_state = st;
            }
        }
    }
    flush();
    return true;
}

}  // namespace snap::sys

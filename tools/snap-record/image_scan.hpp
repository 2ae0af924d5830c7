// SPDX-License-Identifier: Apache-2.0
// One page-table scan of a process's mappings of the image: every present image page, read
// (file page) or written (private anonymous copy). Shared by the pagemap method (every round)
// and the bpf method (a final scan for writes no fault tracepoint sees).
#pragma once
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/sys/pagemap.hpp"
#include "common/sys/proc.hpp"
#include "method.hpp"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>

namespace snap::record {

struct ImageScanStats {
    uint64_t regions = 0;
    uint64_t scanned_virtual_pages = 0;
    bool shared_writable = false;
    bool used_pread = false;
};

// visit(first_image_page, pages, access) for every present run. Returns false if the
// target's address space is gone. CapabilityError passes through.
inline bool scan_image_pages(const Context& ctx, uint64_t image_pages,
                             const std::function<void(uint64_t, uint64_t, uint8_t)>& visit,
                             ImageScanStats& stats) {
    std::vector<sys::MapsEntry> maps;
    try {
        maps = sys::read_maps(ctx.tid);
    } catch (const CapabilityError&) {
        throw;
    } catch (const Error&) {
        return false;  // gone
    }
    auto regions = sys::find_image_regions(maps, ctx.image_dev, ctx.image_ino);
    stats.regions = std::max<uint64_t>(stats.regions, regions.size());
    if (regions.empty()) return true;
    std::unique_ptr<sys::PagemapScanner> scanner;
    try {
        scanner = std::make_unique<sys::PagemapScanner>(ctx.tid);
    } catch (const CapabilityError&) {
        throw;
    } catch (const Error&) {
        return false;
    }
    static const uint64_t host_page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint32_t P = ctx.page_size;
    bool alive = true;
    for (auto& r : regions) {
        if (r.shared && r.writable) stats.shared_writable = true;
        stats.scanned_virtual_pages += (r.end - r.start) / host_page;
        auto on_range = [&](uint64_t s, uint64_t e, sys::PageState st) {
            s = std::max(s, r.start);
            e = std::min(e, r.end);
            if (s >= e) return;
            auto first = sys::image_page_of(r, s, P, image_pages);
            if (!first) return;
            auto last = sys::image_page_of(r, e - 1, P, image_pages);
            uint64_t end_page = last ? *last + 1 : image_pages;
            visit(*first, end_page - *first, st == sys::PageState::anon ? kAccessWrite : kAccessRead);
        };
        if (!scanner->scan(r.start, r.end, on_range)) alive = false;
    }
    if (!scanner->using_ioctl()) stats.used_pread = true;
    return alive;
}

}  // namespace snap::record

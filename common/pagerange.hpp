// SPDX-License-Identifier: Apache-2.0
// A run of image pages: the unit every schedule, install list and prefetch order is made of
// (restore plans, the fault server, the preload). Header-only, no dependencies.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace snap {

struct PageRange {
    uint64_t first_page = 0;
    uint64_t pages = 0;
    uint64_t end_page() const { return first_page + pages; }
    bool operator==(const PageRange&) const = default;
};

// Ranges in address order, overlapping and touching ones merged into one.
inline void sort_and_merge(std::vector<PageRange>& v) {
    std::sort(v.begin(), v.end(), [](const PageRange& a, const PageRange& b) { return a.first_page < b.first_page; });
    size_t o = 0;
    for (const PageRange& r : v) {
        if (o && r.first_page <= v[o - 1].end_page())
            v[o - 1].pages = std::max(v[o - 1].end_page(), r.end_page()) - v[o - 1].first_page;
        else
            v[o++] = r;
    }
    v.resize(o);
}

}  // namespace snap

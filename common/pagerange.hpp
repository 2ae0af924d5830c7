// SPDX-License-Identifier: Apache-2.0
// A run of image pages: the unit every schedule, install list and prefetch order is made of
// (restore plans, the fault server, the preload). Header-only, no dependencies.
#pragma once
#include <cstdint>

namespace snap {

struct PageRange {
    uint64_t first_page = 0;
    uint64_t pages = 0;
    uint64_t end_page() const { return first_page + pages; }
    bool operator==(const PageRange&) const = default;
};

}  // namespace snap

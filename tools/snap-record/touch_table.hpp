// SPDX-License-Identifier: Apache-2.0
// First-touch bookkeeping for methods that scan in rounds (mincore, pagemap): every page
// gets the index of the first scan that saw it as its rank, and the OR of the access bits
// of every scan that saw it. Pure logic, header-only so that unit tests include it directly.
#pragma once
#include "common/loadset.hpp"

#include <cstdint>
#include <vector>

namespace snap::record {

class TouchTable {
public:
    static constexpr uint32_t kUnseen = UINT32_MAX;

    explicit TouchTable(uint64_t pages = 0) : first_scan_(pages, kUnseen), access_(pages, 0) {}

    uint64_t pages() const { return first_scan_.size(); }

    // Start a scan taken time_ns after the start of recording; returns its index (the rank
    // of pages it sees first).
    uint32_t begin_scan(uint64_t time_ns) {
        scan_time_ns_.push_back(time_ns);
        return static_cast<uint32_t>(scan_time_ns_.size() - 1);
    }
    uint32_t scans() const { return static_cast<uint32_t>(scan_time_ns_.size()); }

    // The current scan saw pages [first, first + count) with access bits `access`.
    // Pages past the end are ignored. Calling it twice for a page in one scan is harmless.
    void mark(uint64_t first, uint64_t count, uint8_t access) {
        if (scan_time_ns_.empty() || first >= pages()) return;
        uint64_t end = first + count < first || first + count > pages() ? pages() : first + count;
        uint32_t scan = scans() - 1;
        for (uint64_t p = first; p < end; ++p) {
            if (first_scan_[p] == kUnseen) {
                first_scan_[p] = scan;
                ++touched_;
            }
            access_[p] |= access;
        }
    }

    bool seen(uint64_t page) const { return page < pages() && first_scan_[page] != kUnseen; }
    uint64_t touched() const { return touched_; }

    // One Touch per seen page, in first-touch order (rank, then page).
    std::vector<Touch> touches() const {
        std::vector<std::vector<uint64_t>> by_scan(scans());
        for (uint64_t p = 0; p < pages(); ++p)
            if (first_scan_[p] != kUnseen) by_scan[first_scan_[p]].push_back(p);
        std::vector<Touch> out;
        out.reserve(touched_);
        for (uint32_t s = 0; s < scans(); ++s)
            for (uint64_t p : by_scan[s]) out.push_back({p, scan_time_ns_[s], s, access_[p]});
        return out;
    }

private:
    std::vector<uint32_t> first_scan_;
    std::vector<uint8_t> access_;
    std::vector<uint64_t> scan_time_ns_;
    uint64_t touched_ = 0;
};

}  // namespace snap::record

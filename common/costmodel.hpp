// SPDX-License-Identifier: Apache-2.0
// The cost model behind snap-place: what restoring each class from each tier costs under
// the `tiered` strategy (DESIGN.md §4), per page, from figures measured on this machine
// (FACTS.md "Costs per 4 KiB page"). It chooses a tier for every class the user did not
// place, under capacity budgets, and prints the estimate it computed. The formulas are
// documented in man/snap-place.1 (COST MODEL); every parameter can be overridden.
#pragma once
#include "split.hpp"
#include "tier.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace snap::cost {

// Per tier kind.
struct TierCost {
    double read_gbps = 0;       // sequential read of the tier into memory, GB/s (10^9 bytes/s)
    double map_us = 0;          // per page, mapping a byte-addressable part in place (read fault)
    double random_read_us = 0;  // one page read on demand from the tier
    double price = 0;           // relative cost of capacity per GiB (DRAM = 1)
};

// Restore mechanics, independent of the tier.
struct RestoreCost {
    double install_us = 1.5;      // eager UFFDIO_COPY per page, 2 MiB per ioctl
    double uffd_fault_us = 13;    // userfaultfd round trip for an on-demand page
    double anon_fault_us = 2.3;   // anonymous write fault (a written ZERO page)
    double zero_read_us = 0.25;   // read fault on an untouched anonymous page (assumed, not measured)
    double decompress_gbps = 1.2; // zstd -1 decompression of page data, GB/s
};

struct Params {
    std::array<TierCost, tier::kTierKinds> tiers{};  // indexed by TierKind - 1
    RestoreCost restore;
    // Hot-class choices whose restore cost differs by less than this fraction count as a tie,
    // broken by price (FACTS.md: figures vary by about ±25% between runs).
    double slack = 0.10;

    static Params defaults();
    TierCost& of(tier::TierKind k) { return tiers[static_cast<int>(k) - 1]; }
    const TierCost& of(tier::TierKind k) const { return tiers[static_cast<int>(k) - 1]; }

    // "dram.read_gbps=20", "restore.install_us=2.1", "model.slack=0.2". Throws UsageError.
    void set(const std::string& assignment);
    // {"dram": {"read_gbps": 20}, "restore": {...}, "model": {"slack": 0.2}}. Throws UsageError.
    void apply_json(const nlohmann::json& j, const std::string& source);
    nlohmann::json to_json() const;
};

// How one class is stored, as far as costs go.
struct ClassPlacement {
    PageClass cls = PageClass::rw;
    uint64_t pages = 0;
    uint64_t raw_bytes = 0;
    uint64_t stored_bytes = 0;  // = raw_bytes unless compressed
    uint32_t frame_bytes = 0;   // raw bytes per compressed frame, 0 = not compressed
    const tier::TierSpec* tier = nullptr;
};

struct ClassEstimate {
    PageClass cls = PageClass::rw;
    std::string tier;          // tier name, "" for ZERO (anonymous memory)
    std::string mechanism;     // "copy", "map", "on-demand", "anonymous"
    uint64_t pages = 0;
    uint64_t bytes = 0;        // raw page data bytes
    uint64_t stored_bytes = 0;
    double restore_us = 0;     // on the critical path of a restore (before/at resume)
    double us_per_page = 0;    // restore_us / pages (hot); demand fault cost per page (cold)
    double drain_us = 0;       // COLD only: copying all of it in the background after resume
};

struct Estimate {
    std::vector<ClassEstimate> classes;  // zero, rw, ro, cold
    double restore_us = 0;               // sum of the critical-path costs
    uint64_t dram_bytes = 0;             // part bytes placed on dram tiers
    uint64_t private_dram_bytes = 0;     // memory the VM owns privately after resume (RW + written ZERO pages)
    nlohmann::json to_json() const;
    std::string to_text() const;
};

// Touched ZERO pages, written or only read: they decide the ZERO class's cost.
struct ZeroTouches {
    uint64_t written = 0, read = 0;
};
ZeroTouches count_zero_touches(const SplitPlan& plan);

// Cost of one class on one tier.
ClassEstimate estimate_class(const Params& p, const ClassPlacement& c, uint32_t page_size);
Estimate estimate(const Params& p, const std::vector<ClassPlacement>& parts, const ZeroTouches& zero,
                  uint64_t zero_pages, uint32_t page_size);

// Choose a tier index (into `tiers`) for every class of {rw, ro, cold} with pages:
// fixed[c] >= 0 is the user's choice (checked against budgets); -1 lets the model choose.
// Hot classes (RW, then RO) go to the tier with the lowest restore cost among those whose
// remaining budget holds them, ties within `slack` going to the lower price; COLD goes to the
// lowest price, ties to the cheaper demand fault. Throws UsageError when nothing fits.
// Returns, per class index (PageClass value), the tier index or -1 for classes with no pages.
std::array<int, kPageClasses> choose(const Params& p, const std::vector<tier::TierSpec>& tiers,
                                     const std::array<uint64_t, kPageClasses>& pages_per_class,
                                     const std::array<int, kPageClasses>& fixed, uint32_t page_size);

}  // namespace snap::cost

// SPDX-License-Identifier: Apache-2.0
// --method mincore (FaaSnap): the image is dropped from the page cache before the target
// runs; each scan asks which pages of the image are resident now. A page that became
// resident was read by someone — the target, or readahead on its behalf. No R/W bit.
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/sys/mincore.hpp"
#include "method.hpp"
#include "record.hpp"
#include "scan_clock.hpp"
#include "touch_table.hpp"

#include <unistd.h>

namespace snap::record {

namespace {

class MincoreMethod final : public Method {
public:
    explicit MincoreMethod(const Options& opt) : opt_(opt) {}
    std::string name() const override { return "mincore"; }

    void prepare(const Context& ctx) override {
        res_ = std::make_unique<sys::FileResidency>(ctx.image_path);
        table_ = TouchTable(ctx.image_bytes / ctx.page_size);
        sys_per_image_ = ctx.page_size / static_cast<uint32_t>(::sysconf(_SC_PAGESIZE));
        if (sys_per_image_ == 0) sys_per_image_ = 1;
        resident_before_drop_ = res_->count_resident();
        if (!opt_.keep_cache) res_->drop_cache();
        // Whatever is resident now was not brought in by the target: it cannot be attributed.
        const auto& v = res_->scan();
        baseline_.assign(v.size(), 0);
        for (size_t i = 0; i < v.size(); ++i)
            if (v[i] & 1) {
                baseline_[i] = 1;
                ++baseline_count_;
            }
        if (!opt_.keep_cache && baseline_count_)
            cli::warn(std::to_string(baseline_count_) + " pages of the image stayed in the page cache after "
                      "the drop (mapped or dirty elsewhere, or on tmpfs): touches of them are invisible");
        ra_kb_ = sys::read_ahead_kb(ctx.image_dev);
    }

    void poll(const Context& ctx) override { scan(ctx); }
    void finish(const Context& ctx) override { scan(ctx); }  // residency outlives the target

    void result(const Context& ctx, LoadingSet& out) override {
        out.method = "mincore";
        out.knows_writes = false;
        out.has_time = false;
        out.touches = table_.touches();
        auto& m = out.meta;
        m["scans"] = table_.scans();
        m["cache_dropped"] = !opt_.keep_cache;
        m["resident_before_drop_pages"] = resident_before_drop_;
        m["resident_at_start_pages"] = baseline_count_;
        m["scan_total_ns"] = clock_.total_ns;
        m["scan_max_ns"] = clock_.max_ns;
        if (ra_kb_) m["read_ahead_bytes"] = uint64_t{*ra_kb_} * 1024;
        auto& lim = m["limitations"];
        lim.push_back("sees page-cache residency, not accesses: readahead" +
                      (ra_kb_ ? " (read_ahead_kb=" + std::to_string(*ra_kb_) + ")" : std::string()) +
                      " and fault-around bring in pages that were never touched");
        lim.push_back("no read/write distinction: every page is recorded as read");
        lim.push_back("order is by scan round (" + std::to_string(table_.scans()) +
                      " scans), not by exact first touch");
        lim.push_back("reads of the image by any other process are attributed to the target");
        if (baseline_count_)
            lim.push_back(std::to_string(baseline_count_) + " pages were resident before the target started" +
                          (opt_.keep_cache ? " (--keep-cache)" : "") + ": touches of them are invisible");
    }

private:
    void scan(const Context& ctx) {
        ScanTimer timer(clock_);
        table_.begin_scan(now_ns() - ctx.start_ns);
        const auto& v = res_->scan();
        for (size_t i = 0; i < v.size(); ++i) {
            bool resident = v[i] & 1;
            if (baseline_[i]) {
                // Evicted since the start: a later return to the cache is a real load.
                if (!resident) baseline_[i] = 0;
                continue;
            }
            if (resident) table_.mark(i / sys_per_image_, 1, kAccessRead);
        }
    }

    const Options& opt_;
    std::unique_ptr<sys::FileResidency> res_;
    TouchTable table_;
    ScanClock clock_;
    std::vector<uint8_t> baseline_;  // per system page: resident before the start
    uint64_t baseline_count_ = 0, resident_before_drop_ = 0;
    uint32_t sys_per_image_ = 1;
    std::optional<unsigned> ra_kb_;
};

const bool registered =
    register_method("mincore", [](const Options& o) { return std::make_unique<MincoreMethod>(o); });

}  // namespace

}  // namespace snap::record

// SPDX-License-Identifier: Apache-2.0
// --method pagemap: scan the target's page tables over its mappings of the image. In a
// private file mapping a present page that is the file's page-cache page was read; a present
// (or swapped) anonymous page is a copy-on-write copy: it was written. Writes are exact;
// reads over-approximate by fault-around (the kernel maps cached neighbours of a faulting
// page). Each scan is one round: rank = scan index.
#include "common/cli.hpp"
#include "common/error.hpp"
#include "image_scan.hpp"
#include "method.hpp"
#include "record.hpp"
#include "scan_clock.hpp"
#include "touch_table.hpp"


namespace snap::record {

namespace {

class PagemapMethod final : public Method {
public:
    explicit PagemapMethod(const Options& opt) : opt_(opt) {}
    std::string name() const override { return "pagemap"; }

    void prepare(const Context& ctx) override {
        table_ = TouchTable(ctx.image_bytes / ctx.page_size);
        // Probe access now, so that a permission problem is exit 4 before the target runs.
        sys::PagemapScanner probe(ctx.pid);
    }

    void poll(const Context& ctx) override { scan(ctx); }
    bool per_process() const override { return true; }

    void finish(const Context& ctx) override {
        if (!ctx.target_alive) {
            missed_final_ = true;
            return;
        }
        if (!scan(ctx)) missed_final_ = true;
    }

    void result(const Context& ctx, LoadingSet& out) override {
        out.method = "pagemap";
        out.knows_writes = true;
        out.has_time = false;  // scan rounds, not timestamps (time_ns kept: when the round ran)
        out.touches = table_.touches();
        auto& m = out.meta;
        m["scans"] = table_.scans();
        m["image_mappings"] = stats_.regions;
        m["scanner"] = stats_.used_pread ? "pagemap-read" : "PAGEMAP_SCAN";
        m["scan_total_ns"] = clock_.total_ns;
        m["scan_max_ns"] = clock_.max_ns;
        m["scanned_virtual_pages"] = stats_.scanned_virtual_pages;
        auto& lim = m["limitations"];
        lim.push_back("reads over-approximate: fault-around maps cached neighbours of every read fault "
                      "(fault_around_bytes, large folios) that were never touched; writes are exact");
        lim.push_back("order is by scan round (" + std::to_string(table_.scans()) +
                      " scans), not by exact first touch");
        lim.push_back("a page unmapped between two scans (reclaim, MADV_DONTNEED, munmap) is missed");
        if (stats_.shared_writable)
            lim.push_back("the image is mapped shared and writable: writes through a shared mapping "
                          "look like reads");
        if (ctx.execs)
            lim.push_back("the target exec()ed " + std::to_string(ctx.execs) +
                          " time(s): touches since the last scan before an exec are lost");
        if (missed_final_)
            lim.push_back("no final scan: the target vanished without an exit stop (killed by SIGKILL?); "
                          "touches after the last scan are lost");
        if (stats_.regions == 0)
            cli::warn("neither the target nor a process it forked ever mapped the image (matched by device and inode)");
    }

private:
    // One scan round; false if the target's address space is gone.
    bool scan(const Context& ctx) {
        ScanTimer timer(clock_);
        table_.begin_scan(now_ns() - ctx.start_ns);
        return scan_image_pages(
            ctx, table_.pages(), [&](uint64_t first, uint64_t n, uint8_t access) { table_.mark(first, n, access); },
            stats_);
    }

    const Options& opt_;
    TouchTable table_;
    ScanClock clock_;
    ImageScanStats stats_;
    bool missed_final_ = false;
};

const bool registered =
    register_method("pagemap", [](const Options& o) { return std::make_unique<PagemapMethod>(o); });

}  // namespace

}  // namespace snap::record

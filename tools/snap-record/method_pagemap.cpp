// --method pagemap: scan the target's page tables over its mappings of the image. In a
// private file mapping a present page that is the file's page-cache page was read; a present
// (or swapped) anonymous page is a copy-on-write copy: it was written. Writes are exact;
// reads over-approximate by fault-around (the kernel maps cached neighbours of a faulting
// page). Each scan is one round: rank = scan index.
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/sys/pagemap.hpp"
#include "common/sys/proc.hpp"
#include "method.hpp"
#include "record.hpp"
#include "scan_clock.hpp"
#include "touch_table.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>

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
        m["regions"] = max_regions_;
        m["scanner"] = used_pread_ ? "pagemap-read" : "PAGEMAP_SCAN";
        m["scan_ns_total"] = clock_.total_ns;
        m["scan_ns_max"] = clock_.max_ns;
        m["scanned_virtual_pages"] = scanned_pages_;
        auto& lim = m["limitations"];
        lim.push_back("reads over-approximate: fault-around maps cached neighbours of every read fault "
                      "(fault_around_bytes, large folios) that were never touched; writes are exact");
        lim.push_back("order is by scan round (" + std::to_string(table_.scans()) +
                      " scans), not by exact first touch");
        lim.push_back("a page unmapped between two scans (reclaim, MADV_DONTNEED, munmap) is missed");
        if (shared_writable_)
            lim.push_back("the image is mapped shared and writable: writes through a shared mapping "
                          "look like reads");
        if (ctx.execs)
            lim.push_back("the target exec()ed " + std::to_string(ctx.execs) +
                          " time(s): touches since the last scan before an exec are lost");
        if (missed_final_)
            lim.push_back("no final scan: the target vanished without an exit stop (killed by SIGKILL?); "
                          "touches after the last scan are lost");
        if (max_regions_ == 0) cli::warn("the target never mapped the image (matched by device and inode)");
    }

private:
    // One scan round; false if the target's address space is gone.
    bool scan(const Context& ctx) {
        ScanTimer timer(clock_);
        std::vector<sys::MapsEntry> maps;
        try {
            maps = sys::read_maps(ctx.tid);
        } catch (const CapabilityError&) {
            throw;
        } catch (const Error&) {
            return false;  // gone
        }
        auto regions = sys::find_image_regions(maps, ctx.image_dev, ctx.image_ino);
        uint32_t rank = table_.begin_scan(now_ns() - ctx.start_ns);
        (void)rank;
        max_regions_ = std::max<uint64_t>(max_regions_, regions.size());
        if (regions.empty()) return true;
        std::unique_ptr<sys::PagemapScanner> scanner;
        try {
            scanner = std::make_unique<sys::PagemapScanner>(ctx.tid);
        } catch (const CapabilityError&) {
            throw;
        } catch (const Error&) {
            return false;
        }
        const uint64_t image_pages = table_.pages();
        const uint32_t P = ctx.page_size;
        bool alive = true;
        for (auto& r : regions) {
            if (r.shared && r.writable) shared_writable_ = true;
            scanned_pages_ += (r.end - r.start) / sys_page();
            auto visit = [&](uint64_t s, uint64_t e, sys::PageState st) {
                s = std::max(s, r.start);
                e = std::min(e, r.end);
                if (s >= e) return;
                auto first = sys::image_page_of(r, s, P, image_pages);
                if (!first) return;
                auto last = sys::image_page_of(r, e - 1, P, image_pages);
                uint64_t end_page = last ? *last + 1 : image_pages;
                table_.mark(*first, end_page - *first, st == sys::PageState::anon ? kAccessWrite : kAccessRead);
            };
            if (!scanner->scan(r.start, r.end, visit)) alive = false;
        }
        if (!scanner->using_ioctl()) used_pread_ = true;
        return alive;
    }

    static uint64_t sys_page() {
        static const uint64_t p = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
        return p;
    }

    const Options& opt_;
    TouchTable table_;
    ScanClock clock_;
    uint64_t max_regions_ = 0;
    uint64_t scanned_pages_ = 0;
    bool shared_writable_ = false;
    bool missed_final_ = false;
    bool used_pread_ = false;
};

const bool registered =
    register_method("pagemap", [](const Options& o) { return std::make_unique<PagemapMethod>(o); });

}  // namespace

}  // namespace snap::record

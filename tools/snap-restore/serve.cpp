// snap-restore --serve: Firecracker's UFFD backend over the placed artifact's parts. The
// strategies become eager-install lists (ServeOptions.eager) in front of on-demand serving:
// Firecracker's guest memory is anonymous memory it owns, so nothing can be mapped in place.
#include "restore.hpp"

#include "common/error.hpp"
#include "common/loadset.hpp"
#include "common/restore/source.hpp"
#include "common/tier.hpp"
#include "common/uffd/firecracker.hpp"

#include <algorithm>
#include <limits>

namespace snap::restore_tool {

namespace {

// Image page ranges, coalescing neighbours that come one after the other.
void push_range(std::vector<uffd::PageRange>& v, uint64_t first, uint64_t pages) {
    if (!v.empty() && v.back().first_page + v.back().pages == first) v.back().pages += pages;
    else v.push_back({first, pages});
}

// Hot extents of one or two classes in first-touch order (the smallest rank of their pages).
std::vector<const Extent*> hot_extents(const SplitPlan& plan, bool rw, bool ro) {
    const uint64_t n = plan.image.pages();
    std::vector<uint32_t> rank(n, std::numeric_limits<uint32_t>::max());
    for (const auto& o : plan.order)
        if (o.page < n) rank[o.page] = std::min(rank[o.page], o.rank);
    std::vector<std::pair<uint32_t, const Extent*>> v;
    for (const auto& e : plan.extents) {
        if (!((rw && e.cls == PageClass::rw) || (ro && e.cls == PageClass::ro))) continue;
        uint32_t r = std::numeric_limits<uint32_t>::max();
        for (uint64_t i = 0; i < e.pages && e.image_page + i < n; ++i) r = std::min(r, rank[e.image_page + i]);
        v.push_back({r, &e});
    }
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<const Extent*> out;
    for (auto& p : v) out.push_back(p.second);
    return out;
}

}  // namespace

std::vector<uffd::PageRange> eager_ranges(restore::Strategy s, const SplitPlan& plan) {
    std::vector<uffd::PageRange> v;
    switch (s) {
    case restore::Strategy::vanilla: break;
    case restore::Strategy::reap:
        // REAP's working set: every touched page, zero ones included, in first-touch order.
        for (const auto& o : plan.order) push_range(v, o.page, 1);
        break;
    case restore::Strategy::faasnap:
        for (const Extent* e : hot_extents(plan, true, true)) push_range(v, e->image_page, e->pages);
        break;
    case restore::Strategy::tiered:
        for (const Extent* e : hot_extents(plan, true, false)) push_range(v, e->image_page, e->pages);
        for (const Extent* e : hot_extents(plan, false, true)) push_range(v, e->image_page, e->pages);
        break;
    }
    return v;
}

int run_serve(const Options& opt, Context& ctx) {
    const auto& r = ctx.placed();
    restore::PlacedSource source(r);
    uffd::ServeOptions so;
    so.server.granule_bytes = tier::parse_size(opt.granule);
    if (so.server.granule_bytes == 0 || so.server.granule_bytes % r.page_size())
        throw UsageError("--granule " + opt.granule + ": must be a multiple of the page size");
    so.server.use_zeropage = true;
    so.server.record = !opt.record.empty();
    so.accept_timeout_ms = opt.accept_timeout_s <= 0 ? -1 : int(opt.accept_timeout_s * 1000);
    std::vector<std::string> notes;
    if (so.server.record) {
        if (ctx.strategy() != restore::Strategy::vanilla)
            notes.push_back("recording serves one page per fault: the strategy's eager installs are skipped");
    } else {
        so.eager = eager_ranges(ctx.strategy(), r.plan());
    }
    uint64_t eager_planned = 0;
    for (const auto& e : so.eager) eager_planned += e.pages;
    cli::info("listening on " + opt.serve + " (" + restore::strategy_name(ctx.strategy()) + ", " +
              std::to_string(eager_planned) + " pages eager)");
    auto result = uffd::serve_firecracker(opt.serve, source, so);
    if (so.server.record) {
        result.recording.image = r.image();
        write_loadset(result.recording, opt.record);
    }
    const auto& st = result.stats;
    nlohmann::json j = {{"front_end", "serve"}, {"strategy", restore::strategy_name(ctx.strategy())}, {"placed", opt.placed},
                        {"socket", opt.serve}};
    j.update(result.to_json());
    j["eager_planned_pages"] = eager_planned;
    j["faults"] = {{"total", st.faults}, {"read", st.read_faults}, {"write", st.write_faults}, {"wp", st.wp_faults}};
    j["bytes_copied"] = st.bytes_copied;
    j["ready_ns"] = st.eager_ns;  // handshake done → eager installs done: the guest may run
    j["phases_ns"] = {{"eager", st.eager_ns}, {"serve", st.serve_ns}, {"faults", st.fault_ns}};
    j["bytes_decompressed"] = source.bytes_decompressed();
    j["notes"] = notes;
    if (so.server.record) j["record"] = opt.record;
    ctx.emit(opt, j,
             {std::string(restore::strategy_name(ctx.strategy())) + ": served " + std::to_string(st.faults) + " faults (" +
                  std::to_string(st.read_faults) + " read, " + std::to_string(st.write_faults) + " write), " +
                  std::to_string(result.eager_pages) + " pages installed eagerly in " + std::to_string(st.eager_ns / 1000) + " us",
              std::to_string(st.pages_copied) + " pages copied, " + std::to_string(st.pages_zeroed) + " zeroed, " +
                  std::to_string(st.bytes_copied) + " bytes"});
    return 0;
}

}  // namespace snap::restore_tool

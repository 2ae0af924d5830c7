// SPDX-License-Identifier: Apache-2.0
// snap-restore --serve: Firecracker's UFFD backend over the placed artifact's parts. The
// strategy's schedule (common/restore/plan.hpp, the same one --exec applies) becomes its
// install list, serve_installs(): Firecracker's guest memory is anonymous memory it owns, so
// what --exec maps in place is installed too, after the eager pages; the rest on demand.
#include "restore.hpp"

#include "common/error.hpp"
#include "common/loadset.hpp"
#include "common/restore/source.hpp"
#include "common/tier.hpp"
#include "common/uffd/firecracker.hpp"

#include <algorithm>
#include <limits>

#include <pwd.h>
#include <cerrno>
#include <cstdlib>

namespace snap::restore_tool {

int run_serve(const Options& opt, Context& ctx) {
    const auto& r = ctx.placed();
    restore::PlacedSource source(r, ctx.pool_options());
    uffd::ServeOptions so;
    so.server.granule_bytes = ctx.granule_bytes(opt);
    if (so.server.granule_bytes == 0 || so.server.granule_bytes % r.page_size())
        throw UsageError("--granule " + opt.granule + ": must be a multiple of the page size (" + std::to_string(r.page_size()) + ")");
    so.server.use_zeropage = true;
    ctx.set_polling(opt, so.server);
    so.guardian = true;  // Firecracker cannot tell that its handler died: kill it if we do
    so.server.record = !opt.record.empty();
    so.accept_timeout_ms = opt.accept_timeout_s <= 0 ? -1 : int(opt.accept_timeout_s * 1000);
    for (const auto& who : opt.allow_uids) {  // a user name, or a uid
        char* end = nullptr;
        errno = 0;
        const unsigned long n = std::strtoul(who.c_str(), &end, 10);
        if (!who.empty() && *end == '\0' && errno == 0 && who[0] != '-' && n < uint64_t(uid_t(-1))) {
            so.allowed_uids.push_back(static_cast<uid_t>(n));
            continue;
        }
        const passwd* pw = ::getpwnam(who.c_str());
        if (!pw) throw UsageError("--allow-uid " + who + ": no such user");
        so.allowed_uids.push_back(pw->pw_uid);
    }
    std::vector<std::string> notes;
    if (so.server.record) {
        if (ctx.strategy() != restore::Strategy::vanilla)
            notes.push_back("recording serves one page per fault: the strategy's eager installs are skipped");
    } else {
        const restore::MappingPlan plan = ctx.build_plan(opt, "");
        so.eager = restore::serve_installs(plan);
        if (plan.strategy == restore::Strategy::reap)
            so.install_eager = [&](uffd::FaultServer& fs, std::span<const uffd::PageRange> e) {
                return source.install_hot_parts(fs, e);
            };
        else if (plan.strategy != restore::Strategy::vanilla)
            // Hot parts that cannot be read in place (in a pool, compressed) are fetched whole
            // before listening, not page by page while the guest waits.
            source.populate_rw(true);
        if (plan.strategy == restore::Strategy::faasnap)
            notes.push_back("faasnap's loading set is installed before serving, not paged in concurrently");
    }
    uint64_t eager_planned = 0;
    for (const auto& e : so.eager) eager_planned += e.pages;
    cli::info("listening on " + opt.serve + " (" + restore::strategy_name(ctx.strategy()) + ", " +
              std::to_string(eager_planned) + " pages eager)");
    auto result = uffd::serve_firecracker(opt.serve, source, so);
    bool record_unchanged = false;
    if (so.server.record) {
        result.recording.image = r.image();
        write_loadset(result.recording, opt.record, &record_unchanged);
    }
    const auto& st = result.stats;
    nlohmann::json j = {{"front_end", "serve"}, {"strategy", restore::strategy_name(ctx.strategy())}, {"placed", opt.placed},
                        {"socket", opt.serve}};
    j.update(result.to_json());
    j["eager_planned_pages"] = eager_planned;
    j["page_size_bytes"] = r.page_size();  // of eager_planned_pages (the plan's pages)
    j["copied_bytes"] = st.bytes_copied;
    j["granule_bytes"] = so.server.granule_bytes;
    j["fault_spin_us"] = so.server.spin_us;
    j["ready_ns"] = st.eager_ns;  // handshake done → eager installs done: the guest may run
    j["phases_ns"] = {{"eager", st.eager_ns}, {"serve", st.serve_ns}, {"faults", st.fault_ns}};
    j["decompressed_bytes"] = source.bytes_decompressed();
    j["pool"] = source.pool_json();
    j["notes"] = notes;
    j["verify"] = ctx.check_json();
    if (so.server.record) {
        j["record"] = opt.record;
        j["record_unchanged"] = record_unchanged;
    }
    ctx.emit(opt, j,
             {std::string(restore::strategy_name(ctx.strategy())) + ": served " + std::to_string(st.faults) + " faults (" +
                  std::to_string(st.read_faults) + " read, " + std::to_string(st.write_faults) + " write), " +
                  std::to_string(result.eager_pages) + " pages installed eagerly in " + std::to_string(st.eager_ns / 1000) + " us",
              std::to_string(st.pages_copied) + " pages copied, " + std::to_string(st.pages_zeroed) + " zeroed, " +
                  std::to_string(st.bytes_copied) + " bytes"});
    return 0;
}

}  // namespace snap::restore_tool

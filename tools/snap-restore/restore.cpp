// SPDX-License-Identifier: Apache-2.0
// snap-restore: the shared part (artifact, strategy, plan, report) and the --materialize
// front-end. --exec lives in exec.cpp, --serve in serve.cpp.
#include "restore.hpp"

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/hash.hpp"
#include "common/image.hpp"
#include "common/restore/source.hpp"
#include "common/sys/hugetlbfs.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace snap::restore_tool {

namespace {

uint64_t read_sysctl(const char* path, uint64_t fallback) {
    std::ifstream f(path);
    uint64_t v = 0;
    return (f >> v) ? v : fallback;
}

uint64_t now_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

}  // namespace

Context::Context(const Options& opt) {
    auto s = restore::strategy_from_name(opt.strategy);
    if (!s) throw UsageError("--strategy " + opt.strategy + ": unknown strategy", "use vanilla, reap, faasnap or tiered");
    strategy_ = *s;
    placed_ = std::make_unique<placed::PlacedReader>(opt.placed);
    placed::check_locations(*placed_);  // always: a few stat calls
    // Every part is checked against its digest before anything is served — by default, from
    // remembered verdicts where a file is unchanged since it was last hashed (--verify: hash
    // everything now; --no-verify: nothing).
    const uint64_t t0 = now_ns();
    no_verify_ = opt.no_verify;
    pool_options_.cache_bytes = tier::parse_size(opt.pool_cache);
    pool_options_.prefetch_chunks = opt.pool_prefetch;
    // Pool parts name the seeds they were placed with; --pool reads them from other seeds of the
    // same pool (the cluster as this host reaches it): same namespace, so the same chunk keys.
    const placed::PoolUrls urls = placed::resolve_pool_url(*placed_, opt.pool, "--pool");
    placed_pool_url_ = urls.placed;
    pool_url_ = urls.used;
    if (!opt.pool.empty()) pool_options_.url = urls.used;
    if (!opt.no_verify) checked_ = placed::check_parts(*placed_, !opt.verify);
    check_ns_ = now_ns() - t0;
}

nlohmann::json Context::check_json() const {
    return {{"parts_verdict", no_verify_ ? "skipped" : "checked"}, {"hashed_files", checked_.files_hashed},
            {"remembered_files", checked_.files_remembered}, {"hashed_bytes", checked_.bytes_hashed},
            {"pool_parts", checked_.pool_parts},  // each chunk checked against its name as it arrives
            {"check_ns", check_ns_}};
}

uint64_t Context::granule_bytes(const Options& opt) const {
    const uint64_t ps = placed_->page_size();
    if (!opt.granule.empty()) return tier::parse_size(opt.granule);  // as given: --serve refuses a bad one
    uint64_t g = 64 * 1024;
    for (const auto& p : placed_->parts())
        if (p.cls == PageClass::cold && !tier::byte_addressable(placed_->tier_of(p).kind)) g = 16 * 1024;
    return std::max<uint64_t>(g, ps);
}

int Context::serve_spin_us(const Options& opt) const {
    if (opt.fault_spin_us >= 0) return opt.fault_spin_us;
    // A part whose pages a fault waits on a device or the network for (a file tier, the
    // pool): the chain of wake-ups of each such fault is worth keeping awake.
    for (const auto& p : placed_->parts())
        if (!tier::byte_addressable(placed_->tier_of(p).kind)) return 100;
    return 0;
}

void Context::set_polling(const Options& opt, uffd::ServerOptions& so) const {
    so.spin_us = serve_spin_us(opt);
    so.idle_poll = !opt.no_idle_poll;
}

uint64_t hugetlbfs_page_bytes(const std::string& path) {
    const std::string at = ::access(path.c_str(), F_OK) == 0 ? path : std::filesystem::path(path).parent_path().string();
    return sys::hugetlbfs_page_bytes(at.c_str());
}

restore::MappingPlan Context::build_plan(const Options& opt, const std::string& image_path) const {
    restore::BuildOptions b;
    b.strategy = strategy_;
    b.gap_pages = opt.gap_pages;
    b.drain_cold = opt.drain_cold;
    b.uffd = !opt.layered;
    b.max_mappings = opt.max_mappings;
    b.huge_rw_pages = opt.huge_regions;
    if (b.max_mappings == 0) {
        const uint64_t limit = read_sysctl("/proc/sys/vm/max_map_count", 65530);
        b.max_mappings = limit > 8192 ? limit - 4096 : limit / 2;  // the VMM needs its own
    }
    auto refs = restore::part_refs(*placed_);
    // Guest memory on hugetlbfs stays huge only under mappings of hugetlbfs files, or served
    // over userfaultfd into huge anonymous memory: tiered installs RO eagerly, like RW, unless
    // its layout file is on hugetlbfs too; faasnap installs its loading set (a layout on tmpfs,
    // a mapping per run or anonymous runs would be 4 KiB pages).
    std::string ro_layout;
    if (const uint64_t huge = image_path.empty() ? 0 : hugetlbfs_page_bytes(image_path); huge && !opt.layered) {
        if (strategy_ == restore::Strategy::faasnap) b.uffd_only = true;
        if (strategy_ == restore::Strategy::tiered)
            for (const auto& ref : refs)
                if (ref.cls == PageClass::ro && (ref.layout_path.empty() || hugetlbfs_page_bytes(ref.layout_path) != huge)) {
                    b.uffd_only = true;
                    ro_layout = ref.layout_path;
                }
    }
    auto strict = [&](restore::MappingPlan p) {
        if (!opt.strict || !opt.exec) return p;  // --serve and --materialize read every page from the parts
        const auto fb = p.fallback_pages();
        const uint64_t n = fb[1] + fb[2] + fb[3];
        std::string why;
        if (n) why = std::to_string(n) + " pages would come from the image instead of their part";
        if (strategy_ == restore::Strategy::tiered && !opt.layered && !p.demand)
            why += std::string(why.empty() ? "" : "; ") + "tiered would lay one mapping per run (no usable RO layout file)";
        if (!why.empty()) {
            std::string notes;
            for (auto& note : p.notes) notes += (notes.empty() ? "" : "; ") + note;
            throw Error("--strict: " + why + (notes.empty() ? "" : " (" + notes + ")"), ExitCode::runtime,
                        "drop --strict to restore anyway, or place the parts where the schedule can use them");
        }
        return p;
    };
    // A part that is missing or short is named now, not inside the VMM (pool parts: when a
    // chunk is fetched).
    if (strategy_ != restore::Strategy::vanilla)
        for (const auto& p : placed_->parts())
            if (p.compression != placed::Compression::chunks) placed::PartSource check(p);
    restore::MappingPlan p = restore::build_plan(placed_->plan(), refs, image_path, b);
    if (b.uffd_only && strategy_ == restore::Strategy::tiered)
        p.notes.push_back(image_path + " is on hugetlbfs: RO is installed eagerly into huge pages, not mapped " +
                          (ro_layout.empty() ? std::string("from its part (one mapping per run)") : "in place from " + ro_layout) +
                          ", which would be 4 KiB pages");
    return strict(std::move(p));
}

void Context::emit(const Options& opt, const nlohmann::json& j, const std::vector<std::string>& lines) const {
    // Written atomically (temp, fsync, rename) like every report, or to stdout.
    // Every front-end's report says which pool its pool parts were read from.
    if (opt.common.json) {
        nlohmann::json out = j;
        if (!pool_url_.empty()) {
            out["pool_url"] = pool_url_;
            out["placed_pool_url"] = placed_pool_url_;
        }
        cli::print_report(opt.common.output, out);
        return;
    }
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    if (!opt.pool.empty()) text += "pool parts read from " + pool_url_ + " (the placed artifact names " + placed_pool_url_ + ")\n";
    cli::print_report(opt.common.output, text);
}

// --dry-run with --serve or --materialize: what would be done, nothing done.
int run_dry(const Options& opt, Context& ctx) {
    const auto& r = ctx.placed();
    const restore::MappingPlan plan = ctx.build_plan(opt, "");
    uint64_t installs = 0;
    for (const auto& sp : restore::serve_installs(plan)) installs += sp.pages;
    const char* front = !opt.serve.empty() ? "serve" : "materialize";
    nlohmann::json j = {{"front_end", front}, {"dry_run", true}, {"strategy", restore::strategy_name(plan.strategy)},
                        {"placed", opt.placed}, {"plan", plan.to_json()}, {"serve_install_pages", installs},
                        {"image_bytes", r.image().size_bytes}};
    std::vector<std::string> lines = {std::string(restore::strategy_name(plan.strategy)) + " (" + front + ", dry run): " +
                                      std::to_string(installs) + " pages to install over userfaultfd, " +
                                      std::to_string(r.image().size_bytes) + " image bytes; nothing done"};
    ctx.emit(opt, j, lines);
    return 0;
}

int run_materialize(const Options& opt, Context& ctx) {
    const auto& r = ctx.placed();
    const uint64_t t0 = now_ns();
    cli::Progress progress("materializing", r.image().pages());
    // The parts were checked by the Context already (unless --no-verify).
    auto res = placed::materialize(r, opt.materialize, false, [&](uint64_t done) { progress.update(done); }, ctx.pool_options());
    progress.finish();
    const uint64_t t1 = now_ns();
    // Warm the loading set into the page cache, first-touch order: pread of each hot extent.
    uint64_t warmed = 0;
    if (!opt.no_warm) {
        int fd = ::open(opt.materialize.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw_errno(opt.materialize);
        const uint64_t ps = r.page_size();
        std::vector<std::byte> buf(1 << 20);
        for (const auto& e : r.plan().extents) {
            if (e.cls != PageClass::rw && e.cls != PageClass::ro) continue;
            uint64_t off = e.image_page * ps, left = e.pages * ps;
            while (left) {
                ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(left, buf.size()), off_t(off));
                if (n <= 0) break;
                off += uint64_t(n);
                left -= uint64_t(n);
                warmed += uint64_t(n);
            }
        }
        ::close(fd);
    }
    const uint64_t t2 = now_ns();
    nlohmann::json j = {{"verify", ctx.check_json()},
                        {"front_end", "materialize"},
                        {"placed", opt.placed},
                        {"output", opt.materialize},
                        {"output_unchanged", res.unchanged},
                        {"image_bytes", res.bytes},
                        {"written_bytes", res.data_bytes},
                        {"image_fingerprint", hash::to_hex(res.fingerprint)},
                        {"warmed_bytes", warmed},
                        {"phases_ns", {{"materialize", t1 - t0}, {"warm", t2 - t1}}},
                        {"ready_ns", t2 - t0}};
    ctx.emit(opt, j,
             {"materialized " + opt.materialize + (res.unchanged ? " (unchanged)" : "") + ": " + std::to_string(res.bytes) + " bytes (" + std::to_string(res.data_bytes) +
                  " written), fingerprint " + hash::to_hex(res.fingerprint),
              "warmed " + std::to_string(warmed) + " bytes of the loading set in " + std::to_string((t2 - t1) / 1000000) + " ms"});
    return 0;
}

int run(const Options& opt) {
    const int fronts = int(opt.exec) + int(!opt.serve.empty()) + int(!opt.materialize.empty());
    if (fronts != 1 && !(fronts == 0 && opt.dry_run))
        throw UsageError("choose one front-end: --exec, --serve or --materialize");
    if (!opt.command.empty() && !opt.exec) throw UsageError("a command was given without --exec");
    if (opt.exec && opt.command.empty() && !opt.dry_run) throw UsageError("--exec needs a command after --", "snap-restore P --exec -- qemu-system-x86_64 …");
    if (!opt.record.empty() && opt.serve.empty() && !opt.exec)
        throw UsageError("--record works with --serve or --exec");
    if (!opt.allow_uids.empty() && opt.serve.empty()) throw UsageError("--allow-uid works with --serve");
    if (!opt.record.empty() && opt.exec && opt.strategy != "vanilla")
        throw UsageError("--record with --exec needs --strategy vanilla",
                         "recording serves every page on demand over userfaultfd, one page per fault: a strategy's "
                         "eager work would hide the touches it is meant to record");
    if (opt.drain_cold && opt.strategy != "tiered") throw UsageError("--drain-cold belongs to --strategy tiered");
    if (opt.layered && opt.strategy != "tiered") throw UsageError("--layered belongs to --strategy tiered");
    if (opt.overlap && (!opt.exec || !opt.record.empty() || (opt.strategy != "tiered" && opt.strategy != "reap")))
        throw UsageError("--overlap works with --exec under --strategy reap or tiered (the userfaultfd schedules), without --record");
    if (opt.gap_pages == 0) throw UsageError("--gap-pages must be at least 1");
    if (opt.verify && opt.no_verify) throw UsageError("--verify and --no-verify contradict each other");
    Context ctx(opt);
    if (opt.dry_run && (!opt.serve.empty() || !opt.materialize.empty())) return run_dry(opt, ctx);
    if (opt.exec || opt.dry_run) return run_exec(opt, ctx);  // --dry-run alone: the --exec plan
    if (!opt.serve.empty()) return run_serve(opt, ctx);
    return run_materialize(opt, ctx);
}

}  // namespace snap::restore_tool

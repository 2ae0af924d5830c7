// SPDX-License-Identifier: Apache-2.0
// --method bpf: exact, timestamped first touches from kernel tracepoints (common/bpf/).
// Sources: the target's page faults on its mappings of the image (user), and KVM's view of
// the guest touching its memory (kvm: kvm_page_fault with EPT/NPT, kvm_mmu_set_spte with
// shadow paging), guest-physical addresses translated through --gpa-map. The kernel side
// deduplicates first touches; here events are translated to image pages and ordered by
// timestamp (rank = position in that order).
#include "image_scan.hpp"
#include "method.hpp"
#include "record.hpp"

#include "common/cli.hpp"
#include "common/error.hpp"

#ifdef SNAPKIT_HAVE_BPF
#include "common/bpf/decode.hpp"
#include "common/bpf/tracer.hpp"
#include "common/sys/proc.hpp"
#include "scan_clock.hpp"

#include <dirent.h>
#include <sys/vfs.h>

#include <algorithm>
#include <fstream>
#include <unordered_map>
#include <optional>
#include <set>
#endif

namespace snap::record {

namespace {

#ifdef SNAPKIT_HAVE_BPF

enum class Source { automatic, kvm, user };

Source parse_source(const std::string& s) {
    if (s == "auto") return Source::automatic;
    if (s == "kvm") return Source::kvm;
    if (s == "user") return Source::user;
    throw UsageError("--bpf-source: '" + s + "': expected auto, kvm or user");
}

// Filesystems whose st_dev differs from the device the kernel's inode lives on: resolve
// addresses through /proc/PID/maps (by path) instead of in the kernel.
bool stacked_filesystem(const std::string& path) {
    struct statfs sf {};
    if (::statfs(path.c_str(), &sf) != 0) return false;
    constexpr long kOverlay = 0x794c7630, kBtrfs = 0x9123683e;
    return sf.f_type == kOverlay || sf.f_type == kBtrfs;
}

// Processes already descending from pid (--pid on a wrapper whose child is the VMM).
std::vector<pid_t> descendants(pid_t root) {
    std::multimap<pid_t, pid_t> children;
    if (DIR* d = ::opendir("/proc")) {
        while (dirent* e = ::readdir(d)) {
            pid_t p = static_cast<pid_t>(std::atoi(e->d_name));
            if (p <= 0) continue;
            std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
            std::string stat;
            std::getline(f, stat);
            auto rp = stat.rfind(')');
            if (rp == std::string::npos) continue;
            char state;
            int ppid;
            if (std::sscanf(stat.c_str() + rp + 1, " %c %d", &state, &ppid) == 2) children.emplace(ppid, p);
        }
        ::closedir(d);
    }
    std::vector<pid_t> out, todo{root};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        auto [a, b] = children.equal_range(p);
        for (auto it = a; it != b; ++it) {
            out.push_back(it->second);
            todo.push_back(it->second);
        }
    }
    return out;
}

std::string fault_around_bytes() {
    std::ifstream f("/sys/kernel/debug/fault_around_bytes");
    std::string s;
    std::getline(f, s);
    return s;
}

class BpfMethod final : public Method {
public:
    explicit BpfMethod(const Options& opt) : opt_(opt) {}
    std::string name() const override { return "bpf"; }

    void prepare(const Context& ctx) override {
        Source source = parse_source(opt_.bpf_source);
        bpf::check_available();
        paging_ = bpf::detect_kvm_paging();

        bool want_kvm = source == Source::kvm || (source == Source::automatic && paging_ != bpf::Paging::none);
        if (source == Source::kvm && paging_ == bpf::Paging::none)
            throw CapabilityError("bpf: --bpf-source kvm but KVM is not loaded on this host",
                                  "load kvm (modprobe kvm_intel / kvm_amd), or use --bpf-source user");
        if (want_kvm) {
            if (!opt_.gpa_map.empty()) {
                gpa_ = bpf::GpaMap::parse(opt_.gpa_map, ctx.image_bytes);
            } else {
                try {
                    gpa_ = bpf::GpaMap::identity(ctx.image_bytes);
                } catch (const UsageError&) {
                    if (source == Source::kvm) throw;
                    cli::warn("image over 3 GiB and no --gpa-map: guest touches seen by KVM are not recorded");
                    want_kvm = false;
                }
            }
        } else if (!opt_.gpa_map.empty()) {
            cli::warn("--gpa-map has no effect without the kvm source");
        }

        bpf::TracerConfig cfg;
        cfg.image_dev = ctx.image_dev;
        cfg.image_ino = ctx.image_ino;
        cfg.resolve_in_kernel = !stacked_filesystem(ctx.image_path);
        cfg.want_user = source != Source::kvm;
        cfg.want_kvm_fault = want_kvm && paging_ == bpf::Paging::tdp;
        // Shadow paging: PT_ACCESSED_MASK is clear on sptes KVM prefetches from guest PTEs.
        cfg.want_kvm_spte = want_kvm && paging_ != bpf::Paging::tdp;
        cfg.spte_accessed_mask = cfg.want_kvm_spte ? (1ull << 5) : 0;
        uint64_t pages4k = ctx.image_bytes / bpf::kKernelPageBytes;
        uint64_t keys = pages4k * ((cfg.want_user ? 1 : 0) + (want_kvm ? 1 : 0)) + 65536;
        cfg.dedup_entries = static_cast<uint32_t>(std::min<uint64_t>(keys, 1u << 26));
        // One 32-byte event per page and source (plus upgrades), bounded at 256 MiB.
        cfg.ringbuf_bytes = std::clamp<uint64_t>(keys * 2 * sizeof(snapbpf_event), 8ull << 20, 256ull << 20);
        cfg_ = cfg;

        log_.emplace(ctx.image_bytes, ctx.page_size);
        resolver_.emplace(ctx.image_dev, ctx.image_ino, ctx.image_path,
                          [](pid_t p) { return sys::read_maps(p); });
        tracer_ = std::make_unique<bpf::Tracer>(cfg, [this](const snapbpf_event& ev) { on_event(ev); });
        tracer_->trace(ctx.pid);
        for (pid_t child : descendants(ctx.pid)) tracer_->trace(child);
        tracer_->start();
        prepared_ns_ = now_ns();
        for (auto& tp : tracer_->attached()) cli::info("bpf: attached " + tp);
    }

    void poll(const Context&) override {}

    void finish(const Context& ctx) override {
        if (tracer_) tracer_->stop();
        // Writes the kernel does on the target's behalf through get_user_pages (KVM's pfn
        // caches: kvmclock, steal time) make a private copy without any fault a tracepoint
        // sees. The target is still alive here (stopped at its exit): one page-table scan of
        // its image mappings finds every written page, and those the events missed are added.
        if (!tracer_ || !ctx.target_alive) return;
        final_scan_ns_ = now_ns();
        ImageScanStats stats;
        try {
            scan_image_pages(
                ctx, ctx.image_bytes / ctx.page_size,
                [&](uint64_t first, uint64_t n, uint8_t access) {
                    if (access & kAccessWrite)
                        for (uint64_t p = first; p < first + n; ++p) final_written_.push_back(p);
                },
                stats);
            final_scanned_ = stats.regions > 0;
            // A page can be reported twice (several mappings of it; a rescanned tail).
            std::sort(final_written_.begin(), final_written_.end());
            final_written_.erase(std::unique(final_written_.begin(), final_written_.end()), final_written_.end());
        } catch (const Error& e) {
            cli::warn(std::string("bpf: final page-table scan failed: ") + e.what());
        }
    }

    void result(const Context& ctx, LoadingSet& out) override {
        out.method = "bpf";
        out.knows_writes = true;
        out.has_time = true;
        if (!tracer_) return;
        auto& c = log_->counters();
        tracer_->add_kernel_counters(c);
        uint64_t start = ctx.start_ns ? ctx.start_ns : prepared_ns_;
        out.touches = log_->touches(start);
        uint64_t gup_upgraded = 0, gup_added = 0;
        if (!final_written_.empty()) {
            std::unordered_map<uint64_t, size_t> at;
            for (size_t i = 0; i < out.touches.size(); ++i) at[out.touches[i].page] = i;
            uint32_t rank = out.touches.empty() ? 0 : out.touches.back().rank + 1;
            uint64_t t = final_scan_ns_ > start ? final_scan_ns_ - start : 0;
            if (!out.touches.empty()) t = std::max(t, out.touches.back().time_ns);
            for (uint64_t p : final_written_) {
                auto it = at.find(p);
                if (it == at.end()) {
                    out.touches.push_back({p, t, rank++, static_cast<uint8_t>(kAccessRead | kAccessWrite)});
                    ++gup_added;
                } else if (!(out.touches[it->second].access & kAccessWrite)) {
                    out.touches[it->second].access |= kAccessWrite;
                    ++gup_upgraded;
                }
            }
        }

        auto& m = out.meta;
        m["lost_events"] = c.lost;
        auto b = bpf::counters_json(c);
        nlohmann::json sources = nlohmann::json::array();
        for (auto& tp : tracer_->attached()) sources.push_back(tp);
        b["tracepoints"] = sources;
        b["bpf_source"] = opt_.bpf_source;
        b["kvm_paging"] = bpf::paging_name(paging_);
        if (gpa_) b["gpa_map"] = gpa_->to_string();
        b["resolved_in_kernel"] = cfg_.resolve_in_kernel;
        b["vma_cache"] = tracer_->vma_cache();
        b["maps_reads"] = resolver_->maps_reads();
        b["ringbuf_bytes"] = cfg_.ringbuf_bytes;
        b["dedup_entries"] = cfg_.dedup_entries;
        b["final_pagemap_scan"] = final_scanned_;
        b["final_scan_written_pages"] = final_written_.size();
        b["final_scan_added_pages"] = gup_added;
        b["final_scan_upgraded_pages"] = gup_upgraded;
        m["bpf"] = b;

        auto& lim = m["limitations"];
        if (cfg_.want_user) {
            std::string fab = fault_around_bytes();
            lim.push_back("reads can be hidden, never invented: a read fault maps cached neighbours "
                          "of the page without further faults (fault-around" +
                          (fab.empty() ? std::string() : ", fault_around_bytes=" + fab) +
                          "), so their reads are not seen; writes are exact");
        }
        uint64_t kvm_events = c.by_source[SNAPBPF_SRC_KVM_SPTE] + c.by_source[SNAPBPF_SRC_KVM_FAULT];
        if (cfg_.want_kvm_spte && kvm_events)
            lim.push_back("guest touches are seen when KVM installs a shadow mapping (kvm_mmu_set_spte); "
                          "a write counts when KVM maps the page writable; accesses of KVM's instruction emulator and "
                          "of the VMM itself are seen as page faults of the VMM, unless fault-around mapped the page");
        if (cfg_.want_kvm_fault && kvm_events)
            lim.push_back("guest touches are seen as KVM's two-dimensional paging faults (kvm_page_fault)");
        if (opt_.pid)
            lim.push_back("pages the target had mapped before recording started are not seen (--pid)");
        if (gup_added + gup_upgraded)
            lim.push_back(std::to_string(gup_added + gup_upgraded) +
                          " pages were written without a fault any tracepoint sees (get_user_pages, e.g. KVM's kvmclock) "
                          "and were found by a page-table scan at the target's exit: they come last, at the scan's time");
        if (!final_scanned_)
            lim.push_back("no final page-table scan of the image mapping (the direct target does not map the image, "
                          "or had gone): writes made through get_user_pages without a fault are not seen");
        if (c.lost)
            lim.push_back(std::to_string(c.lost) + " events lost (ring buffer full): their pages are missing");
        if (c.huge)
            lim.push_back(std::to_string(c.huge) + " KVM mappings were larger than 4 KiB: recorded as their first page");
        if (c.lost) cli::warn(std::to_string(c.lost) + " bpf events lost (ring buffer full)");
    }

private:
    void on_event(const snapbpf_event& ev) {
        std::optional<uint64_t> off;
        switch (ev.source) {
            case SNAPBPF_SRC_FILE: off = ev.page * bpf::kKernelPageBytes; break;
            case SNAPBPF_SRC_VADDR:
                off = resolver_->to_offset(static_cast<pid_t>(ev.tgid), ev.page * bpf::kKernelPageBytes);
                break;
            case SNAPBPF_SRC_KVM_FAULT:
            case SNAPBPF_SRC_KVM_SPTE:
                if (gpa_) off = gpa_->to_offset(ev.page * bpf::kKernelPageBytes);
                break;
            default: break;
        }
        log_->add(ev, off);
    }

    const Options& opt_;
    bpf::Paging paging_ = bpf::Paging::none;
    bpf::TracerConfig cfg_;
    std::optional<bpf::GpaMap> gpa_;
    std::optional<bpf::TouchLog> log_;
    std::optional<bpf::VaddrResolver> resolver_;
    std::unique_ptr<bpf::Tracer> tracer_;
    uint64_t prepared_ns_ = 0;
    uint64_t final_scan_ns_ = 0;
    bool final_scanned_ = false;
    std::vector<uint64_t> final_written_;
};

const bool registered = register_method("bpf", [](const Options& o) { return std::make_unique<BpfMethod>(o); });

#else  // built without libbpf/clang/bpftool/kernel BTF

class NoBpfMethod final : public Method {
public:
    std::string name() const override { return "bpf"; }
    void prepare(const Context&) override {
        throw CapabilityError("bpf: this snap-record was built without BPF support",
                              "rebuild with clang, bpftool, libbpf-dev and kernel BTF, or use --method pagemap");
    }
    void poll(const Context&) override {}
    void finish(const Context&) override {}
    void result(const Context&, LoadingSet&) override {}
};

const bool registered = register_method("bpf", [](const Options&) { return std::make_unique<NoBpfMethod>(); });

#endif

}  // namespace

}  // namespace snap::record

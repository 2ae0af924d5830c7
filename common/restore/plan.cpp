// SPDX-License-Identifier: Apache-2.0
// The mapping plan: building it from a split's plan and the placed parts, counting the
// mappings it needs, resolving every page's origin (for tests and checks), and the byte
// format it travels to the preload in.
#include "plan.hpp"

#include "common/error.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace snap::restore {

const char* strategy_name(Strategy s) {
    switch (s) {
    case Strategy::vanilla: return "vanilla";
    case Strategy::reap: return "reap";
    case Strategy::faasnap: return "faasnap";
    case Strategy::tiered: return "tiered";
    }
    return "?";
}

std::optional<Strategy> strategy_from_name(std::string_view n) {
    for (auto s : {Strategy::vanilla, Strategy::reap, Strategy::faasnap, Strategy::tiered})
        if (n == strategy_name(s)) return s;
    return std::nullopt;
}

const char* op_name(OpKind k) {
    switch (k) {
    case OpKind::anon: return "anon";
    case OpKind::copy: return "copy";
    case OpKind::map: return "map";
    }
    return "?";
}

const char* mechanism_name(Mechanism m) {
    switch (m) {
    case Mechanism::image: return "image";
    case Mechanism::anon: return "anon";
    case Mechanism::copy: return "copy";
    case Mechanism::map: return "map";
    case Mechanism::install: return "install";
    case Mechanism::demand: return "demand";
    }
    return "?";
}

const char* base_name(Base b) {
    switch (b) {
    case Base::image: return "image";
    case Base::file: return "file";
    case Base::anon: return "anon";
    }
    return "?";
}

namespace {

// class_name() lives with the split reader; the preload links this file alone.
const char* cls_name(PageClass c) {
    static const char* const names[] = {"zero", "ro", "rw", "cold"};
    return names[static_cast<int>(c) & 3];
}

bool anon_backed(OpKind k) { return k == OpKind::anon || k == OpKind::copy; }

// Per-page facts the builder needs, computed once.
struct PageFacts {
    std::vector<PageClass> cls;
    std::vector<PageOrigin> source;  // where a copy reads page p from
};

PageFacts page_facts(const SplitPlan& split, std::span<const PartRef> parts, std::vector<PlanFile>& files,
                     std::array<int32_t, kPageClasses>& part_file, std::vector<std::string>& notes) {
    const uint64_t n = split.image.pages(), ps = split.image.page_size;
    PageFacts f;
    f.cls.assign(n, PageClass::zero);
    f.source.assign(n, PageOrigin{});
    for (const auto& r : split.runs)
        for (uint64_t p = r.start_page; p < r.start_page + r.pages && p < n; ++p) f.cls[p] = r.cls;
    part_file.fill(kNoFile);
    std::array<const PartRef*, kPageClasses> part_of{};
    for (const auto& p : parts) {
        part_of[static_cast<int>(p.cls)] = &p;
        if (p.raw) {
            part_file[static_cast<int>(p.cls)] = static_cast<int32_t>(files.size());
            files.push_back({p.path});
        } else {
            notes.push_back(std::string(cls_name(p.cls)) + (p.in_pool ? " part is in a pool" : " part is compressed") +
                            ": its pages are read from the image");
        }
    }
    for (uint64_t p = 0; p < n; ++p)
        if (f.cls[p] != PageClass::zero) f.source[p] = {kImageFile, p * ps};
    for (const auto& e : split.extents) {
        int32_t file = part_file[static_cast<int>(e.cls)];
        const PartRef* pr = part_of[static_cast<int>(e.cls)];
        if (file == kNoFile || !pr) continue;
        for (uint64_t i = 0; i < e.pages && e.image_page + i < n; ++i)
            f.source[e.image_page + i] = {file, pr->offset + (e.data_page + i) * ps};
    }
    return f;
}

// Append page p to a span list, extending the last span when p follows it.
void push_page(std::vector<PageSpan>& v, uint64_t p) {
    if (!v.empty() && v.back().end_page() == p) ++v.back().pages;
    else v.push_back({p, 1});
}

// Append page p, read from src, to the pieces of the op whose pieces start at `begin`,
// extending the last piece when p and its bytes follow it (zero pieces: kNoFile).
void push_piece(std::vector<CopyPiece>& pieces, size_t begin, uint64_t p, const PageOrigin& src, uint64_t ps) {
    if (pieces.size() > begin) {
        CopyPiece& last = pieces.back();
        if (last.page + last.pages == p && last.file == src.file &&
            (src.file == kNoFile || last.file_offset + last.pages * ps == src.offset)) {
            ++last.pages;
            return;
        }
    }
    pieces.push_back({p, 1, src.file, src.file == kNoFile ? 0 : src.offset});
}

// Extents of RW and/or RO in first-touch order of their first touched page (untouched
// extents last, in address order).
std::vector<PageSpan> extents_by_first_touch(const SplitPlan& split, bool rw, bool ro) {
    const uint64_t n = split.image.pages();
    std::vector<uint32_t> rank(n, std::numeric_limits<uint32_t>::max());
    for (const auto& o : split.order)
        if (o.page < n) rank[o.page] = std::min(rank[o.page], o.rank);
    struct R { uint32_t rank; uint64_t first, pages; };
    std::vector<R> hot;
    for (const auto& e : split.extents) {
        if (!((rw && e.cls == PageClass::rw) || (ro && e.cls == PageClass::ro))) continue;
        uint32_t r = std::numeric_limits<uint32_t>::max();
        for (uint64_t i = 0; i < e.pages && e.image_page + i < n; ++i) r = std::min(r, rank[e.image_page + i]);
        hot.push_back({r, e.image_page, e.pages});
    }
    std::stable_sort(hot.begin(), hot.end(), [](const R& a, const R& b) { return a.rank < b.rank; });
    std::vector<PageSpan> out;
    for (const auto& h : hot) out.push_back({h.first, h.pages});
    return out;
}

struct Seg {
    OpKind kind;
    uint64_t first, pages;
    int32_t file = kNoFile;
    uint64_t offset = 0;
    uint64_t end() const { return first + pages; }
};

std::vector<Seg> desired_segments(const SplitPlan& split, Strategy s, const std::array<int32_t, kPageClasses>& part_file,
                                  const PartRef* ro_part, const PartRef* rw_part, const PartRef* cold_part, uint32_t ps) {
    std::vector<Seg> segs;
    if (s == Strategy::vanilla) return segs;
    auto part_for = [&](PageClass c) -> const PartRef* {
        return c == PageClass::ro ? ro_part : c == PageClass::rw ? rw_part : c == PageClass::cold ? cold_part : nullptr;
    };
    if (s == Strategy::faasnap || s == Strategy::tiered)
        for (const auto& r : split.runs)
            if (r.cls == PageClass::zero) segs.push_back({OpKind::anon, r.start_page, r.pages});
    for (const auto& e : split.extents) {
        const bool hot = e.cls == PageClass::rw || e.cls == PageClass::ro;
        int32_t file = part_file[static_cast<int>(e.cls)];
        const PartRef* pr = part_for(e.cls);
        uint64_t off = pr ? pr->offset + e.data_page * uint64_t(ps) : 0;
        switch (s) {
        case Strategy::faasnap:
            if (hot) {
                if (file != kNoFile) segs.push_back({OpKind::map, e.image_page, e.pages, file, off});
                // a compressed hot part: the image serves those pages (prefetched all the same)
            }
            break;
        case Strategy::tiered:
            if (e.cls == PageClass::rw) segs.push_back({OpKind::copy, e.image_page, e.pages});
            else if (file != kNoFile) segs.push_back({OpKind::map, e.image_page, e.pages, file, off});
            else if (e.cls == PageClass::ro) segs.push_back({OpKind::copy, e.image_page, e.pages});
            // compressed COLD: stays on the image mapping
            break;
        default: break;
        }
    }
    std::sort(segs.begin(), segs.end(), [](const Seg& a, const Seg& b) { return a.first < b.first; });
    return segs;
}

// Merge and drop under gap threshold `gap`; map runs shorter than `map_min` fall back to the image.
std::vector<Seg> merge_segments(const std::vector<Seg>& in, uint64_t gap, uint64_t map_min) {
    std::vector<Seg> out;
    for (const auto& s : in) {
        if (!out.empty()) {
            Seg& last = out.back();
            const uint64_t hole = s.first - last.end();
            if (anon_backed(last.kind) && anon_backed(s.kind) && hole < std::max<uint64_t>(gap, 1)) {
                // The hole (image pages) is copied in; a copy op reads pieces page by page later.
                if (last.kind == OpKind::copy || s.kind == OpKind::copy || hole > 0) last.kind = OpKind::copy;
                last.pages = s.end() - last.first;
                continue;
            }
        }
        out.push_back(s);
    }
    // Small zero runs and small map runs go back to the image (which holds those bytes too).
    std::vector<Seg> kept;
    for (const auto& s : out) {
        if (s.kind == OpKind::anon && s.pages < gap) continue;
        if (s.kind == OpKind::map && s.pages < map_min) continue;
        kept.push_back(s);
    }
    return kept;
}

std::vector<Seg> merge_maps(const std::vector<Seg>& in, uint32_t ps) {
    std::vector<Seg> out;
    for (const auto& s : in) {
        if (!out.empty()) {
            Seg& l = out.back();
            if (l.kind == OpKind::map && s.kind == OpKind::map && l.file == s.file && l.end() == s.first &&
                l.offset + l.pages * ps == s.offset) {
                l.pages += s.pages;
                continue;
            }
        }
        out.push_back(s);
    }
    return out;
}

void set_hot_lists(MappingPlan& plan, const SplitPlan& split, const std::vector<PageClass>& cls);

MappingPlan finalize(const SplitPlan& split, const PageFacts& f, std::vector<Seg> segs, MappingPlan plan) {
    const uint32_t ps = plan.page_size;
    plan.ops.clear();
    plan.pieces.clear();
    plan.copy_bytes = 0;
    for (auto& row : plan.pages) row.fill(0);
    std::vector<Mechanism> mech(plan.image_pages, Mechanism::image);
    for (const auto& s : segs) {
        Op op;
        op.kind = s.kind;
        op.first_page = s.first;
        op.pages = s.pages;
        if (s.kind == OpKind::map) {
            op.file = s.file;
            op.file_offset = s.offset;
        }
        if (s.kind == OpKind::copy) {
            op.piece_begin = static_cast<uint32_t>(plan.pieces.size());
            for (uint64_t p = s.first; p < s.end(); ++p) push_piece(plan.pieces, op.piece_begin, p, f.source[p], ps);
            // zero pieces need no work: keep only the ones that read something
            auto first = plan.pieces.begin() + op.piece_begin;
            plan.pieces.erase(std::remove_if(first, plan.pieces.end(), [](const CopyPiece& c) { return c.file == kNoFile; }),
                              plan.pieces.end());
            op.piece_count = static_cast<uint32_t>(plan.pieces.size() - op.piece_begin);
            for (size_t i = op.piece_begin; i < plan.pieces.size(); ++i) plan.copy_bytes += plan.pieces[i].pages * ps;
        }
        const Mechanism m = s.kind == OpKind::anon ? Mechanism::anon : s.kind == OpKind::copy ? Mechanism::copy : Mechanism::map;
        for (uint64_t p = s.first; p < s.end(); ++p) mech[p] = m;
        plan.ops.push_back(op);
    }
    for (uint64_t p = 0; p < plan.image_pages; ++p)
        ++plan.pages[static_cast<int>(f.cls[p])][static_cast<int>(mech[p])];

    // Prefetch (faasnap): hot extents, in first-touch order of their first touched page.
    set_hot_lists(plan, split, f.cls);
    plan.prefetch.clear();
    plan.drain.clear();
    if (plan.strategy == Strategy::faasnap) plan.prefetch = plan.in_place;
    plan.mappings = count_mappings(plan);
    return plan;
}

// The one definition of each strategy's hot pages, whatever the front-end: `eager`, made
// present before the guest runs (installed over userfaultfd, or copied by the preload in a
// layered plan), and `in_place`, mapped where they lie (installed by --serve after eager).
void set_hot_lists(MappingPlan& plan, const SplitPlan& split, const std::vector<PageClass>& cls) {
    const uint64_t n = plan.image_pages;
    plan.eager.clear();
    plan.in_place.clear();
    std::vector<bool> seen(n, false);
    auto eager = [&](uint64_t first, uint64_t pages) {
        for (uint64_t p = first; p < first + pages && p < n; ++p) {
            if (seen[p]) continue;
            seen[p] = true;
            push_page(plan.eager, p);
        }
    };
    switch (plan.strategy) {
    case Strategy::vanilla: break;
    case Strategy::reap:
        // REAP's working set: every touched page, zero ones included, in first-touch order.
        for (const auto& o : split.order) eager(o.page, 1);
        break;
    case Strategy::faasnap:
        // The loading set, mapped from its compact part (zero pages are anonymous memory).
        plan.in_place = extents_by_first_touch(split, true, true);
        break;
    case Strategy::tiered:
        // RW into private DRAM, then the touched ZERO pages; RO in place.
        for (const auto& sp : extents_by_first_touch(split, true, false)) eager(sp.first_page, sp.pages);
        for (const auto& o : split.order)
            if (o.page < n && cls[o.page] == PageClass::zero) eager(o.page, 1);
        plan.in_place = extents_by_first_touch(split, false, true);
        break;
    }
}

// The userfaultfd schedules (reap, and tiered with a layout file): no ops, a base mapping,
// eager installs before the guest runs, everything else on demand.
MappingPlan uffd_plan(const SplitPlan& split, const PageFacts& f, MappingPlan plan, const std::string& layout_path,
                      uint64_t huge_rw_pages) {
    const uint64_t n = plan.image_pages;
    plan.demand = true;
    plan.ops.clear();
    plan.pieces.clear();
    plan.prefetch.clear();
    set_hot_lists(plan, split, f.cls);
    if ((plan.strategy == Strategy::tiered && layout_path.empty()) || plan.strategy == Strategy::faasnap) {
        // Nothing maps RO in place (no layout file: RO is in a pool or compressed; or
        // BuildOptions::uffd_only): the touched RO pages are installed eagerly after RW, like
        // REAP's working set; faasnap's whole loading set likewise.
        plan.eager.insert(plan.eager.end(), plan.in_place.begin(), plan.in_place.end());
        plan.in_place.clear();
    }
    std::vector<Mechanism> mech(n, Mechanism::demand);
    for (const auto& sp : plan.eager)
        for (uint64_t p = sp.first_page; p < sp.end_page() && p < n; ++p) mech[p] = Mechanism::install;
    // Huge regions: a 2 MiB-aligned stretch dense in RW pages costs less as one anonymous
    // huge page filled whole by the preload (a THP fault, 260-800 µs here, then a memcpy of
    // 2 MiB) than as UFFDIO_COPY of its RW pages one by one (~2.4 µs each: a 4 KiB allocation
    // per page): from ~250 RW pages in the region on. Its
    // RO and COLD pages are read too (from their uncompressed parts), its ZERO pages are the
    // huge page's zeros: the price is the region's other pages in private DRAM (reported).
    const uint64_t region = (2u << 20) / plan.page_size;
    std::vector<bool> huge(n, false);
    if (huge_rw_pages > 0 && plan.page_size == 4096)
        for (uint64_t r0 = 0; r0 + region <= n; r0 += region) {
            uint64_t rw = 0, unreadable = 0, cold = 0;
            for (uint64_t p = r0; p < r0 + region; ++p) {
                rw += f.cls[p] == PageClass::rw;
                cold += f.cls[p] == PageClass::cold;
                if (f.cls[p] != PageClass::zero && f.source[p].file == kImageFile) ++unreadable;  // compressed part
            }
            // COLD pages would be read on the critical path (from a file tier, cold: measured
            // 10 ms for read-list with 20 COLD pages in its region): none.
            if (rw < huge_rw_pages || unreadable > 0 || cold > 0) continue;
            Op op;
            op.kind = OpKind::copy;
            op.first_page = r0;
            op.pages = region;
            op.piece_begin = static_cast<uint32_t>(plan.pieces.size());
            for (uint64_t p = r0; p < r0 + region; ++p) {
                huge[p] = true;
                mech[p] = Mechanism::copy;
                if (f.source[p].file != kNoFile) push_piece(plan.pieces, op.piece_begin, p, f.source[p], plan.page_size);
            }
            op.piece_count = static_cast<uint32_t>(plan.pieces.size() - op.piece_begin);
            plan.ops.push_back(op);
        }
    bool any_huge = false;
    for (const auto& op : plan.ops) any_huge |= op.kind == OpKind::copy;
    if (any_huge) {
        plan.huge = true;
        uint64_t rounding = 0;
        for (const auto& op : plan.ops)
            if (op.kind == OpKind::copy)
                for (uint64_t p = op.first_page; p < op.first_page + op.pages; ++p) rounding += f.cls[p] != PageClass::rw;
        uint64_t regions = 0;
        for (const auto& op : plan.ops) regions += op.kind == OpKind::copy;
        plan.notes.push_back(std::to_string(regions) + " 2 MiB regions dense in RW pages are filled whole as huge pages (" +
                             std::to_string(rounding) + " pages of private DRAM beyond their RW pages)");
    }
    // The layout file holds the RO pages at their image offsets (tiered); its holes fault to
    // the server: ZERO and COLD on demand. Without RO pages, anonymous memory underneath.
    plan.base = layout_path.empty() ? Base::anon : Base::file;
    if (!layout_path.empty()) {
        plan.base_file = static_cast<int32_t>(plan.files.size());
        plan.files.push_back({layout_path});
        for (const auto& sp : plan.in_place)
            for (uint64_t p = sp.first_page; p < sp.end_page() && p < n; ++p) mech[p] = Mechanism::map;
    }
    plan.copy_bytes = 0;
    for (auto& row : plan.pages) row.fill(0);
    for (uint64_t p = 0; p < n; ++p) {
        if ((mech[p] == Mechanism::install || mech[p] == Mechanism::copy) && f.cls[p] != PageClass::zero)
            plan.copy_bytes += plan.page_size;
        ++plan.pages[static_cast<int>(f.cls[p])][static_cast<int>(mech[p])];
    }
    plan.mappings = count_mappings(plan);
    return plan;
}

}  // namespace

MappingPlan build_plan(const SplitPlan& split, std::span<const PartRef> parts, const std::string& image_path,
                       const BuildOptions& opt) {
    MappingPlan plan;
    plan.strategy = opt.strategy;
    plan.page_size = split.image.page_size;
    plan.image_pages = split.image.pages();
    plan.files.push_back({image_path});
    std::array<int32_t, kPageClasses> part_file{};
    PageFacts facts = page_facts(split, parts, plan.files, part_file, plan.notes);
    const PartRef *ro = nullptr, *rw = nullptr, *cold = nullptr;
    for (const auto& p : parts) {
        if (p.cls == PageClass::ro) ro = &p;
        if (p.cls == PageClass::rw) rw = &p;
        if (p.cls == PageClass::cold) cold = &p;
    }
    if (opt.strategy == Strategy::vanilla) {
        // vanilla never reads a part: keep only the image in the file table
        plan.files.resize(1);
        plan.notes.clear();
    }
    if (opt.strategy == Strategy::faasnap && opt.uffd_only) {
        plan.notes.clear();
        plan.gap_pages = 0;
        plan = uffd_plan(split, facts, std::move(plan), "", 0);
        plan.files.resize(1);  // the parts are read by the fault server, not mapped
        plan.notes.push_back("faasnap in its userfaultfd form: the loading set installed before the guest runs, in "
                             "first-touch order (as under --serve), nothing mapped over the VMM's memory");
        return plan;
    }
    if (opt.strategy == Strategy::reap || (opt.strategy == Strategy::tiered && opt.uffd)) {
        std::string layout;
        if (opt.strategy == Strategy::tiered && ro && !opt.uffd_only) layout = ro->layout_path;
        // tiered with RO that cannot be mapped (in a pool, compressed) or must not be
        // (uffd_only): the userfaultfd schedule over anonymous memory, RO installed eagerly
        // after RW (uffd_plan).
        if (opt.strategy == Strategy::reap || !ro || !layout.empty() || !ro->raw || opt.uffd_only) {
            // Parts are read by the fault server; the preload reads them only for huge regions.
            plan.notes.clear();
            plan.gap_pages = 0;
            const bool tiered = opt.strategy == Strategy::tiered;
            plan = uffd_plan(split, facts, std::move(plan), layout, tiered ? opt.huge_rw_pages : 0);
            if (plan.ops.empty()) {  // the preload reads no part: keep the image and the layout file only
                std::vector<PlanFile> files{plan.files[0]};
                if (plan.base == Base::file) {
                    files.push_back(plan.files[plan.base_file]);
                    plan.base_file = 1;
                }
                plan.files = std::move(files);
            }
            if (opt.strategy == Strategy::tiered && opt.drain_cold)
                for (const auto& e : split.extents)
                    if (e.cls == PageClass::cold) plan.drain.push_back({e.image_page, e.pages});
            return plan;
        }
        plan.notes.push_back("the ro part has no image-order layout file on tmpfs or hugetlbfs (snap-place writes one for "
                             "byte-addressable tiers): one mapping per RO run");
    }
    std::vector<Seg> desired = desired_segments(split, opt.strategy, part_file, ro, rw, cold, plan.page_size);
    uint64_t gap = opt.gap_pages, map_min = 0;
    for (;;) {
        std::vector<Seg> segs = merge_segments(merge_maps(desired, plan.page_size), gap, map_min);
        plan.gap_pages = gap;
        plan = finalize(split, facts, std::move(segs), std::move(plan));
        if (opt.max_mappings == 0 || plan.mappings <= opt.max_mappings) break;
        if (gap > plan.image_pages)
            throw UsageError("the " + std::string(strategy_name(opt.strategy)) + " plan needs " + std::to_string(plan.mappings) +
                                 " mappings, more than the " + std::to_string(opt.max_mappings) + " allowed",
                             "raise vm.max_map_count (sysctl) or --max-mappings, or use --strategy vanilla");
        gap = std::max<uint64_t>(gap * 2, 1);
        map_min = gap;
    }
    if (gap != opt.gap_pages)
        plan.notes.push_back("merged across gaps below " + std::to_string(gap) + " pages to stay within " +
                             std::to_string(opt.max_mappings) + " mappings");
    if (opt.strategy == Strategy::tiered && opt.drain_cold)
        for (const auto& e : split.extents)
            if (e.cls == PageClass::cold) plan.drain.push_back({e.image_page, e.pages});
    return plan;
}

uint64_t count_mappings(const MappingPlan& plan) {
    const uint64_t ps = plan.page_size;
    struct Key { bool anon; int32_t file; uint64_t offset, pages; };
    std::vector<Key> segs;
    auto add = [&](Key k) {
        if (k.pages == 0) return;
        if (!segs.empty()) {
            Key& l = segs.back();
            if ((l.anon && k.anon) || (!l.anon && !k.anon && l.file == k.file && l.offset + l.pages * ps == k.offset)) {
                l.pages += k.pages;
                return;
            }
        }
        segs.push_back(k);
    };
    // What lies underneath the ops: the image, the layout file (both at image offsets), or anonymous memory.
    const bool under_anon = plan.base == Base::anon;
    const int32_t under = plan.base == Base::file ? plan.base_file : kImageFile;
    auto base = [&](uint64_t first, uint64_t pages) { add({under_anon, under_anon ? kNoFile : under, first * ps, pages}); };
    uint64_t at = 0;
    for (const auto& op : plan.ops) {
        if (op.first_page > at) base(at, op.first_page - at);
        if (anon_backed(op.kind)) add({true, kNoFile, 0, op.pages});
        else add({false, op.file, op.file_offset, op.pages});
        at = op.first_page + op.pages;
    }
    if (at < plan.image_pages) base(at, plan.image_pages - at);
    return segs.size();
}

std::vector<PageSpan> serve_installs(const MappingPlan& plan) {
    std::vector<PageSpan> out;
    std::vector<bool> seen(plan.image_pages, false);
    for (const auto* v : {&plan.eager, &plan.in_place})
        for (const auto& sp : *v)
            for (uint64_t p = sp.first_page; p < sp.first_page + sp.pages && p < plan.image_pages; ++p) {
                if (seen[p]) continue;
                seen[p] = true;
                push_page(out, p);
            }
    return out;
}

namespace {
// Page spans of `v` minus the pages the plan's ops cover (address order kept per span).
std::vector<PageSpan> minus_ops(const MappingPlan& plan, const std::vector<PageSpan>& v) {
    std::vector<bool> op(plan.image_pages, false);
    for (const auto& o : plan.ops)
        for (uint64_t p = o.first_page; p < o.first_page + o.pages && p < plan.image_pages; ++p) op[p] = true;
    std::vector<PageSpan> out;
    for (const auto& sp : v)
        for (uint64_t p = sp.first_page; p < sp.end_page() && p < plan.image_pages; ++p) {
            if (!op[p]) push_page(out, p);
        }
    return out;
}
}  // namespace

std::vector<PageSpan> exec_installs(const MappingPlan& plan, bool before_guest) {
    std::vector<PageSpan> v = minus_ops(plan, plan.eager);
    if (before_guest) sort_and_merge(v);
    return v;
}

std::vector<PageSpan> exec_present(const MappingPlan& plan) {
    std::vector<PageSpan> v = minus_ops(plan, plan.in_place);
    for (const auto& o : plan.ops) v.push_back({o.first_page, o.pages});
    return v;
}

std::vector<PageOrigin> page_origins(const MappingPlan& plan) {
    const uint64_t ps = plan.page_size;
    std::vector<PageOrigin> o(plan.image_pages);
    if (plan.base != Base::image) {
        // uffd plans: the layout file holds its pages at their image offsets (holes are
        // served); everything else comes from the fault server.
        for (uint64_t p = 0; p < plan.image_pages; ++p) o[p] = {kDemand, 0};
        if (plan.base == Base::file)
            for (const auto& sp : plan.in_place)
                for (uint64_t i = 0; i < sp.pages && sp.first_page + i < plan.image_pages; ++i)
                    o[sp.first_page + i] = {plan.base_file, (sp.first_page + i) * ps};
        for (const auto& op : plan.ops) {  // huge regions: zeros, then the pieces read in
            for (uint64_t i = 0; i < op.pages && op.first_page + i < plan.image_pages; ++i) o[op.first_page + i] = {kNoFile, 0};
            for (uint32_t k = 0; k < op.piece_count; ++k) {
                const CopyPiece& c = plan.pieces[op.piece_begin + k];
                for (uint64_t i = 0; i < c.pages && c.page + i < plan.image_pages; ++i) o[c.page + i] = {c.file, c.file_offset + i * ps};
            }
        }
        return o;
    }
    for (uint64_t p = 0; p < plan.image_pages; ++p) o[p] = {kImageFile, p * ps};
    for (const auto& op : plan.ops) {
        for (uint64_t i = 0; i < op.pages && op.first_page + i < plan.image_pages; ++i) {
            PageOrigin& x = o[op.first_page + i];
            if (op.kind == OpKind::map) x = {op.file, op.file_offset + i * ps};
            else x = {kNoFile, 0};
        }
        if (op.kind == OpKind::copy)
            for (uint32_t k = 0; k < op.piece_count; ++k) {
                const CopyPiece& c = plan.pieces[op.piece_begin + k];
                for (uint64_t i = 0; i < c.pages && c.page + i < plan.image_pages; ++i)
                    o[c.page + i] = {c.file, c.file_offset + i * ps};
            }
    }
    return o;
}

std::array<uint64_t, kPageClasses> MappingPlan::fallback_pages() const {
    std::array<uint64_t, kPageClasses> out{};
    if (strategy == Strategy::vanilla) return out;
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        if (strategy == Strategy::faasnap && c == PageClass::cold) continue;
        out[static_cast<int>(c)] = pages[static_cast<int>(c)][static_cast<int>(Mechanism::image)];
    }
    return out;
}

nlohmann::json MappingPlan::to_json() const {
    nlohmann::json j;
    j["strategy"] = strategy_name(strategy);
    j["page_size_bytes"] = page_size;
    j["image_pages"] = image_pages;
    j["gap_pages"] = gap_pages;
    j["base"] = base_name(base);
    j["demand"] = demand;
    j["huge"] = huge;
    j["mappings"] = mappings;
    std::array<uint64_t, 4> by_kind{};
    for (const auto& op : ops) ++by_kind[static_cast<int>(op.kind)];
    j["ops"] = {{"anon", by_kind[1]}, {"copy", by_kind[2]}, {"map", by_kind[3]}};
    j["copy_pieces"] = pieces.size();
    j["copy_bytes"] = copy_bytes;
    nlohmann::json cls = nlohmann::json::object();
    for (int c = 0; c < kPageClasses; ++c) {
        nlohmann::json m = nlohmann::json::object();
        for (int k = 0; k < kMechanisms; ++k) m[mechanism_name(static_cast<Mechanism>(k))] = pages[c][k];
        cls[cls_name(static_cast<PageClass>(c))] = m;
    }
    j["mechanism_pages"] = cls;
    const auto fb = fallback_pages();
    j["fallback_pages"] = {{"rw", fb[static_cast<int>(PageClass::rw)]},
                           {"ro", fb[static_cast<int>(PageClass::ro)]},
                           {"cold", fb[static_cast<int>(PageClass::cold)]}};
    auto total = [](const std::vector<PageSpan>& v) {
        uint64_t t = 0;
        for (const auto& s : v) t += s.pages;
        return t;
    };
    j["eager_pages"] = total(eager);
    j["eager_spans"] = eager.size();
    j["in_place_pages"] = total(in_place);
    j["prefetch_pages"] = total(prefetch);
    j["drain_pages"] = total(drain);
    nlohmann::json files_j = nlohmann::json::array();
    for (const auto& f : files) files_j.push_back(f.path);
    j["files"] = files_j;
    j["notes"] = notes;
    return j;
}

// ---------------------------------------------------------------- encode / decode

namespace {
constexpr char kMagic[8] = {'S', 'N', 'R', 'P', 'L', 'A', 'N', '2'};

struct Out {
    std::vector<std::byte> b;
    void u64(uint64_t v) {
        for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::byte>(v >> (8 * i)));
    }
    void str(const std::string& s) {
        u64(s.size());
        for (char c : s) b.push_back(static_cast<std::byte>(c));
    }
};

struct In {
    std::span<const std::byte> b;
    size_t at = 0;
    const std::string& name;
    uint64_t u64() {
        if (b.size() - at < 8) throw BadInput(name, "restore plan truncated at byte " + std::to_string(at));
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
        at += 8;
        return v;
    }
    uint64_t count(uint64_t unit_bytes) {
        uint64_t n = u64();
        if (n > (b.size() - at) / unit_bytes) throw BadInput(name, "restore plan: count " + std::to_string(n) + " exceeds the file");
        return n;
    }
    std::string str() {
        uint64_t n = count(1);
        std::string s(reinterpret_cast<const char*>(b.data() + at), n);
        at += n;
        return s;
    }
};
}  // namespace

std::vector<std::byte> encode(const MappingPlan& p) {
    Out o;
    for (char c : kMagic) o.b.push_back(static_cast<std::byte>(c));
    o.u64(static_cast<uint64_t>(p.strategy));
    o.u64(p.page_size);
    o.u64(p.image_pages);
    o.u64(p.gap_pages);
    o.u64(p.mappings);
    o.u64(p.copy_bytes);
    o.u64(p.files.size());
    for (const auto& f : p.files) o.str(f.path);
    o.u64(static_cast<uint64_t>(p.base));
    o.u64(static_cast<uint64_t>(static_cast<int64_t>(p.base_file)));
    o.u64(p.demand ? 1 : 0);
    o.u64(p.huge ? 1 : 0);
    o.u64(p.ops.size());
    for (const auto& op : p.ops) {
        o.u64(static_cast<uint64_t>(op.kind));
        o.u64(op.first_page);
        o.u64(op.pages);
        o.u64(static_cast<uint64_t>(static_cast<int64_t>(op.file)));
        o.u64(op.file_offset);
        o.u64(op.piece_begin);
        o.u64(op.piece_count);
    }
    o.u64(p.pieces.size());
    for (const auto& c : p.pieces) {
        o.u64(c.page);
        o.u64(c.pages);
        o.u64(static_cast<uint64_t>(static_cast<int64_t>(c.file)));
        o.u64(c.file_offset);
    }
    for (const auto* v : {&p.eager, &p.in_place, &p.prefetch, &p.drain}) {
        o.u64(v->size());
        for (const auto& s : *v) {
            o.u64(s.first_page);
            o.u64(s.pages);
        }
    }
    for (int c = 0; c < kPageClasses; ++c)
        for (int k = 0; k < kMechanisms; ++k) o.u64(p.pages[c][k]);
    o.u64(p.notes.size());
    for (const auto& n : p.notes) o.str(n);
    return o.b;
}

MappingPlan decode(std::span<const std::byte> bytes, const std::string& name) {
    if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        throw BadInput(name, "not a snap-restore plan (bad magic)");
    In in{bytes, sizeof kMagic, name};
    MappingPlan p;
    uint64_t s = in.u64();
    if (s > 3) throw BadInput(name, "restore plan: unknown strategy " + std::to_string(s));
    p.strategy = static_cast<Strategy>(s);
    uint64_t ps = in.u64();
    if (ps == 0 || (ps & (ps - 1)) || ps > (1u << 30)) throw BadInput(name, "restore plan: bad page size");
    p.page_size = static_cast<uint32_t>(ps);
    p.image_pages = in.u64();
    p.gap_pages = in.u64();
    p.mappings = in.u64();
    p.copy_bytes = in.u64();
    uint64_t nf = in.count(8);
    if (nf == 0) throw BadInput(name, "restore plan: no image file");
    for (uint64_t i = 0; i < nf; ++i) p.files.push_back({in.str()});
    auto file_ok = [&](int64_t f, bool allow_none) {
        return (allow_none && f == kNoFile) || (f >= 0 && static_cast<uint64_t>(f) < nf);
    };
    uint64_t base = in.u64();
    if (base > 2) throw BadInput(name, "restore plan: unknown base " + std::to_string(base));
    p.base = static_cast<Base>(base);
    p.base_file = static_cast<int32_t>(static_cast<int64_t>(in.u64()));
    if ((p.base == Base::file) != file_ok(p.base_file, false) || (p.base != Base::file && p.base_file != kNoFile))
        throw BadInput(name, "restore plan: bad base file");
    uint64_t demand = in.u64();
    if (demand > 1) throw BadInput(name, "restore plan: bad demand flag");
    p.demand = demand == 1;
    uint64_t huge = in.u64();
    if (huge > 1) throw BadInput(name, "restore plan: bad huge flag");
    p.huge = huge == 1;
    uint64_t nops = in.count(56);
    uint64_t prev_end = 0;
    for (uint64_t i = 0; i < nops; ++i) {
        Op op;
        uint64_t k = in.u64();
        if (k < 1 || k > 3) throw BadInput(name, "restore plan: bad op kind");
        op.kind = static_cast<OpKind>(k);
        op.first_page = in.u64();
        op.pages = in.u64();
        op.file = static_cast<int32_t>(static_cast<int64_t>(in.u64()));
        op.file_offset = in.u64();
        op.piece_begin = static_cast<uint32_t>(in.u64());
        op.piece_count = static_cast<uint32_t>(in.u64());
        if (op.pages == 0 || op.first_page < prev_end || op.first_page > p.image_pages || op.pages > p.image_pages - op.first_page)
            throw BadInput(name, "restore plan: op " + std::to_string(i) + " out of order or out of the image");
        if (op.kind == OpKind::map && (!file_ok(op.file, false) || op.file_offset % ps))
            throw BadInput(name, "restore plan: op " + std::to_string(i) + " maps a bad file or offset");
        prev_end = op.first_page + op.pages;
        p.ops.push_back(op);
    }
    uint64_t npc = in.count(32);
    for (uint64_t i = 0; i < npc; ++i) {
        CopyPiece c;
        c.page = in.u64();
        c.pages = in.u64();
        c.file = static_cast<int32_t>(static_cast<int64_t>(in.u64()));
        c.file_offset = in.u64();
        if (!file_ok(c.file, true)) throw BadInput(name, "restore plan: piece " + std::to_string(i) + " names a bad file");
        p.pieces.push_back(c);
    }
    for (const auto& op : p.ops) {
        if (op.kind != OpKind::copy) continue;
        if (uint64_t(op.piece_begin) + op.piece_count > npc) throw BadInput(name, "restore plan: copy op pieces out of range");
        for (uint32_t k = 0; k < op.piece_count; ++k) {
            const CopyPiece& c = p.pieces[op.piece_begin + k];
            if (c.page < op.first_page || c.pages > op.first_page + op.pages - c.page)
                throw BadInput(name, "restore plan: a copy piece lies outside its op");
        }
    }
    for (auto* v : {&p.eager, &p.in_place, &p.prefetch, &p.drain}) {
        uint64_t n = in.count(16);
        for (uint64_t i = 0; i < n; ++i) {
            PageSpan sp{in.u64(), in.u64()};
            if (sp.first_page > p.image_pages || sp.pages > p.image_pages - sp.first_page)
                throw BadInput(name, "restore plan: a prefetch span lies outside the image");
            v->push_back(sp);
        }
    }
    for (int c = 0; c < kPageClasses; ++c)
        for (int k = 0; k < kMechanisms; ++k) p.pages[c][k] = in.u64();
    uint64_t nn = in.count(8);
    for (uint64_t i = 0; i < nn; ++i) p.notes.push_back(in.str());
    if (in.at != bytes.size()) throw BadInput(name, "restore plan: trailing bytes");
    return p;
}

}  // namespace snap::restore

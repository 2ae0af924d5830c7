// SPDX-License-Identifier: Apache-2.0
#include "split.hpp"

#include "error.hpp"
#include "hash.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace snap {

using namespace format;

namespace {
constexpr ChunkType kImgi = chunk_type("IMGI");
constexpr ChunkType kMeta = chunk_type("META");
constexpr ChunkType kClas = chunk_type("CLAS");
constexpr ChunkType kOrdr = chunk_type("ORDR");
constexpr ChunkType kExtn = chunk_type("EXTN");
constexpr ChunkType kPgrw = chunk_type("PGRW");
constexpr ChunkType kPgro = chunk_type("PGRO");
constexpr ChunkType kPgcl = chunk_type("PGCL");
constexpr size_t kRunBytes = 24, kOrderBytes = 16, kExtentBytes = 32;

const ChunkType& data_chunk(PageClass c) {
    static const ChunkType none{};
    switch (c) {
        case PageClass::rw: return kPgrw;
        case PageClass::ro: return kPgro;
        case PageClass::cold: return kPgcl;
        default: return none;
    }
}
}  // namespace

const char* class_name(PageClass c) {
    switch (c) {
        case PageClass::zero: return "zero";
        case PageClass::ro: return "ro";
        case PageClass::rw: return "rw";
        case PageClass::cold: return "cold";
    }
    return "?";
}

SplitPlan classify_pages(const ImageIdentity& image, const std::vector<bool>& zero, const LoadingSet& touched,
                         const SplitOptions& opt) {
    const uint64_t pages = image.pages();
    SplitPlan plan;
    plan.image = image;
    // First-touch position of every touched page (UINT64_MAX = untouched).
    std::vector<uint64_t> pos(pages, UINT64_MAX);
    std::vector<uint8_t> access(pages, 0);
    plan.order.reserve(touched.touches.size());
    for (uint64_t i = 0; i < touched.touches.size(); ++i) {
        const Touch& t = touched.touches[i];
        pos[t.page] = i;
        access[t.page] = t.access;
        plan.order.push_back({t.page, t.rank, t.access});
    }
    const bool writes_known = touched.knows_writes;
    auto cls_of = [&](uint64_t p) {
        if (zero[p]) return PageClass::zero;
        if (pos[p] == UINT64_MAX) return PageClass::cold;
        bool written = writes_known ? (access[p] & kAccessWrite) != 0 : opt.assume_written;
        return written ? PageClass::rw : PageClass::ro;
    };
    for (uint64_t p = 0; p < pages; ++p) {
        PageClass c = cls_of(p);
        plan.pages_per_class[static_cast<int>(c)]++;
        if (!plan.runs.empty() && plan.runs.back().cls == c) plan.runs.back().pages++;
        else plan.runs.push_back({p, 1, c});
    }
    // Extents: the non-zero runs; hot ones ordered by their earliest first touch.
    std::vector<std::pair<uint64_t, Extent>> hot[2];  // [0] = rw, [1] = ro
    std::vector<Extent> cold;
    for (auto& r : plan.runs) {
        if (r.cls == PageClass::zero) continue;
        Extent e{r.start_page, r.pages, r.cls, 0};
        if (r.cls == PageClass::cold) {
            cold.push_back(e);
            continue;
        }
        uint64_t first = UINT64_MAX;
        for (uint64_t p = r.start_page; p < r.start_page + r.pages; ++p) first = std::min(first, pos[p]);
        hot[r.cls == PageClass::rw ? 0 : 1].push_back({first, e});
    }
    for (auto& h : hot) {
        std::sort(h.begin(), h.end(), [](auto& a, auto& b) { return a.first < b.first; });
        uint64_t data_page = 0;
        for (auto& [first, e] : h) {
            e.data_page = data_page;
            data_page += e.pages;
            plan.extents.push_back(e);
        }
    }
    uint64_t data_page = 0;
    for (auto& e : cold) {
        e.data_page = data_page;
        data_page += e.pages;
        plan.extents.push_back(e);
    }
    plan.meta["assume_written"] = opt.assume_written;
    plan.meta["writes_known"] = writes_known;
    plan.meta["touched_class_note"] = writes_known ? "RW = written in the loading set"
                                      : opt.assume_written
                                          ? "loading set has no R/W information: touched pages classed RW (--assume-written)"
                                          : "loading set has no R/W information: touched pages classed RO";
    return plan;
}

SplitPlan plan_split(const Image& image, const LoadingSet& touched, const SplitOptions& opt,
                     const std::function<void(uint64_t)>& progress) {
    const uint64_t pages = image.pages();
    std::vector<bool> zero(pages);
    image.advise_sequential();
    // One pass over the image: zero detection and, unless already known, the fingerprint,
    // a few MiB at a time so that both read the bytes while they are in cache.
    const bool hash_it = !image.has_fingerprint();
    hash::Xxh3Stream h;
    const uint64_t batch = std::max<uint64_t>(1, (4u << 20) / image.page_size());
    for (uint64_t p = 0; p < pages; p += batch) {
        uint64_t n = std::min(batch, pages - p);
        if (hash_it) h.update(image.page(p), n * image.page_size());
        for (uint64_t i = p; i < p + n; ++i) zero[i] = image.is_zero(i);
        if (progress) progress(p);
    }
    if (hash_it) image.remember_fingerprint(h.digest());
    if (progress) progress(pages);
    return classify_pages(image.identity(), zero, touched, opt);
}

void add_plan_chunks(ArtifactWriter& w, const SplitPlan& plan) {
    std::vector<std::byte> b;
    put_u64(b, plan.image.size_bytes);
    put_u64(b, plan.image.fingerprint);
    put_u32(b, plan.image.page_size);
    put_u32(b, 0);
    w.add_chunk(kImgi, std::move(b));
    w.add_chunk(kMeta, plan.meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    b = {};
    b.reserve(plan.runs.size() * kRunBytes);
    for (auto& r : plan.runs) {
        put_u64(b, r.start_page);
        put_u64(b, r.pages);
        put_u32(b, static_cast<uint32_t>(r.cls));
        put_u32(b, 0);
    }
    w.add_chunk(kClas, std::move(b));
    b = {};
    b.reserve(plan.order.size() * kOrderBytes);
    for (auto& o : plan.order) {
        put_u64(b, o.page);
        put_u32(b, o.rank);
        put_u32(b, o.access);
    }
    w.add_chunk(kOrdr, std::move(b));
    b = {};
    b.reserve(plan.extents.size() * kExtentBytes);
    for (auto& e : plan.extents) {
        put_u64(b, e.image_page);
        put_u64(b, e.pages);
        put_u32(b, static_cast<uint32_t>(e.cls));
        put_u32(b, 0);
        put_u64(b, e.data_page);
    }
    w.add_chunk(kExtn, std::move(b));
}

uint64_t write_split(const Image& image, const SplitPlan& plan, const std::string& path, uint64_t parent_digest,
                     const std::function<void()>& before_commit) {
    const uint32_t ps = image.page_size();
    ArtifactWriter w(Kind::split, ps, parent_digest);
    add_plan_chunks(w, plan);
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        uint64_t bytes = plan.pages_per_class[static_cast<int>(c)] * ps;
        w.add_chunk(data_chunk(c), bytes,
                    [&image, &plan, c, ps](const std::function<void(const void*, size_t)>& emit) {
                        for (auto& e : plan.extents)
                            if (e.cls == c) emit(image.page(e.image_page), e.pages * ps);
                    },
                    kChunkRequired | kChunkPageAligned);
    }
    file::AtomicOutput out(path);
    uint64_t d = w.finish(out);
    if (before_commit) before_commit();
    out.commit();
    return d;
}

std::vector<ChunkType> plan_chunk_types() { return {kImgi, kMeta, kClas, kOrdr, kExtn}; }

SplitPlan decode_plan_chunks(const Artifact& a) {
    SplitPlan plan;
    // Metadata chunks are small: verify them now. Page data is verified on demand.
    auto imgi = a.verified_bytes(a.require(kImgi));
    if (imgi.size() != 24) a.bad("chunk IMGI has " + std::to_string(imgi.size()) + " bytes, expected 24");
    plan.image.size_bytes = get_u64(&imgi[0]);
    plan.image.fingerprint = get_u64(&imgi[8]);
    plan.image.page_size = get_u32(&imgi[16]);
    const uint32_t ps = plan.image.page_size;
    if (ps != a.header().page_size) a.bad("IMGI page size disagrees with the header");
    if (plan.image.size_bytes == 0 || plan.image.size_bytes % ps) a.bad("image size is not a positive multiple of the page size");
    const uint64_t pages = plan.image.pages();
    auto meta = a.verified_bytes(a.require(kMeta));
    plan.meta = parse_json_chunk(a, meta, "META");
    auto clas = a.verified_bytes(a.require(kClas));
    if (clas.size() % kRunBytes) a.bad("chunk CLAS length is not a multiple of 24");
    uint64_t next = 0;
    for (size_t i = 0; i < clas.size() / kRunBytes; ++i) {
        const std::byte* p = &clas[i * kRunBytes];
        ClassRun r{get_u64(p), get_u64(p + 8), static_cast<PageClass>(get_u32(p + 16) & 0xff)};
        if (get_u32(p + 16) > 3) a.bad("class run " + std::to_string(i) + ": unknown class " + std::to_string(get_u32(p + 16)));
        if (r.start_page != next || r.pages == 0 || r.pages > pages - next)
            a.bad("class run " + std::to_string(i) + " does not continue the previous run within the image");
        next += r.pages;
        plan.pages_per_class[static_cast<int>(r.cls)] += r.pages;
        plan.runs.push_back(r);
    }
    if (next != pages) a.bad("class runs cover " + std::to_string(next) + " of " + std::to_string(pages) + " pages");
    // Bounded by reality: ZERO pages cost nothing in the file, so a few KiB could claim a TiB
    // image and make every consumer that walks the image (materialize hashes it) work for
    // minutes. The image may have at most kMaxZeroPagesPerDataPage zero pages per page of data
    // the artifact carries, beyond kZeroPagesAllowance (man/snapkit-formats.5).
    const uint64_t data_pages = pages - plan.pages_per_class[0];
    if (plan.pages_per_class[0] > kZeroPagesAllowance &&
        (plan.pages_per_class[0] - kZeroPagesAllowance) / kMaxZeroPagesPerDataPage > data_pages)
        a.bad("claims an image of " + std::to_string(pages) + " pages, " + std::to_string(plan.pages_per_class[0]) +
              " of them zero, for " + std::to_string(data_pages) + " pages of data: more zero pages than a snapshot can have");
    auto ordr = a.verified_bytes(a.require(kOrdr));
    if (ordr.size() % kOrderBytes) a.bad("chunk ORDR length is not a multiple of 16");
    if (ordr.size() / kOrderBytes > pages) a.bad("chunk ORDR lists more pages than the image has");
    // Repeats are found by sorting the listed pages: no array sized by the claimed image size
    // (a few KiB may claim a TiB image of zero pages).
    std::vector<uint64_t> listed;
    listed.reserve(ordr.size() / kOrderBytes);
    plan.order.reserve(ordr.size() / kOrderBytes);
    for (size_t i = 0; i < ordr.size() / kOrderBytes; ++i) {
        const std::byte* p = &ordr[i * kOrderBytes];
        OrderEntry o{get_u64(p), get_u32(p + 8), static_cast<uint8_t>(get_u32(p + 12))};
        if (o.page >= pages || get_u32(p + 12) == 0 || get_u32(p + 12) > 3)
            a.bad("load order entry " + std::to_string(i) + " is invalid (page out of range, or bad access)");
        listed.push_back(o.page);
        plan.order.push_back(o);
    }
    std::sort(listed.begin(), listed.end());
    if (auto dup = std::adjacent_find(listed.begin(), listed.end()); dup != listed.end())
        a.bad("load order lists page " + std::to_string(*dup) + " twice");
    auto extn = a.verified_bytes(a.require(kExtn));
    if (extn.size() % kExtentBytes) a.bad("chunk EXTN length is not a multiple of 32");
    std::array<uint64_t, kPageClasses> covered{};
    for (size_t i = 0; i < extn.size() / kExtentBytes; ++i) {
        const std::byte* p = &extn[i * kExtentBytes];
        uint32_t c = get_u32(p + 16);
        Extent e{get_u64(p), get_u64(p + 8), static_cast<PageClass>(c & 0xff), get_u64(p + 24)};
        std::string at = "extent " + std::to_string(i);
        if (c < 1 || c > 3) a.bad(at + ": invalid class " + std::to_string(c));
        if (e.pages == 0 || e.image_page >= pages || e.pages > pages - e.image_page) a.bad(at + ": outside the image");
        uint64_t cls_pages = plan.pages_per_class[c];
        if (e.data_page > cls_pages || e.pages > cls_pages - e.data_page) a.bad(at + ": outside its page-data chunk");
        auto run = std::upper_bound(plan.runs.begin(), plan.runs.end(), e.image_page,
                                    [](uint64_t pg, const ClassRun& r) { return pg < r.start_page; }) - 1;
        if (run->cls != e.cls || e.image_page + e.pages > run->start_page + run->pages)
            a.bad(at + ": not inside one run of its class");
        covered[c] += e.pages;
        plan.extents.push_back(e);
    }
    for (int c = 1; c < kPageClasses; ++c)
        if (covered[c] != plan.pages_per_class[c])
            a.bad(std::string("extents cover ") + std::to_string(covered[c]) + " " + class_name(static_cast<PageClass>(c)) +
                  " pages, the class runs say " + std::to_string(plan.pages_per_class[c]));
    // Extents must not overlap in the image...
    {
        std::vector<const Extent*> ex;
        for (auto& e : plan.extents) ex.push_back(&e);
        std::sort(ex.begin(), ex.end(), [](auto* x, auto* y) { return x->image_page < y->image_page; });
        for (size_t i = 1; i < ex.size(); ++i)
            if (ex[i]->image_page < ex[i - 1]->image_page + ex[i - 1]->pages) a.bad("extents overlap in the image");
    }
    // ...nor in the data chunk: sorted by data_page, a class's extents tile its chunk.
    for (int c = 1; c < kPageClasses; ++c) {
        std::vector<const Extent*> ex;
        for (auto& e : plan.extents)
            if (static_cast<int>(e.cls) == c) ex.push_back(&e);
        std::sort(ex.begin(), ex.end(), [](auto* x, auto* y) { return x->data_page < y->data_page; });
        uint64_t at = 0;
        for (auto* e : ex) {
            if (e->data_page != at) a.bad(std::string(class_name(static_cast<PageClass>(c))) + " extents overlap or leave gaps in their page data");
            at += e->pages;
        }
    }
    return plan;
}

SplitReader::SplitReader(const std::string& path)
    : artifact_(path, Kind::split, 0, {kImgi, kMeta, kClas, kOrdr, kExtn, kPgrw, kPgro, kPgcl}) {
    auto& a = artifact_;
    plan_ = decode_plan_chunks(a);
    const uint32_t ps = plan_.image.page_size;
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        const ChunkEntry& ch = a.require(data_chunk(c));
        if (!(ch.flags & kChunkPageAligned)) a.bad("chunk " + chunk_type_name(ch.type) + " is not page-aligned");
        if (ch.length != plan_.pages_per_class[static_cast<int>(c)] * ps)
            a.bad("chunk " + chunk_type_name(ch.type) + " holds " + std::to_string(ch.length) + " bytes, its class needs " +
                  std::to_string(plan_.pages_per_class[static_cast<int>(c)] * ps));
        data_[static_cast<int>(c)] = &ch;
    }
}

PageClass SplitReader::class_of(uint64_t page) const {
    auto it = std::upper_bound(plan_.runs.begin(), plan_.runs.end(), page,
                               [](uint64_t p, const ClassRun& r) { return p < r.start_page; });
    if (it == plan_.runs.begin()) return PageClass::zero;
    --it;
    return it->cls;
}

std::span<const std::byte> SplitReader::class_data(PageClass cls, bool verify) const {
    auto* ch = data_[static_cast<int>(cls)];
    if (!ch) return {};
    if (verify) artifact_.verify_chunk(*ch);
    return artifact_.bytes(*ch);
}

std::span<const std::byte> SplitReader::extent_data(const Extent& e) const {
    return class_data(e.cls).subspan(e.data_page * page_size(), e.pages * page_size());
}

uint64_t SplitReader::extent_file_offset(const Extent& e) const {
    return data_[static_cast<int>(e.cls)]->offset + e.data_page * page_size();
}

void SplitReader::verify_data() const {
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) class_data(c, true);
}

}  // namespace snap

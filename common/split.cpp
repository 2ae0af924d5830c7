// SPDX-License-Identifier: Apache-2.0
#include "split.hpp"

#include "cli.hpp"
#include "error.hpp"
#include "hash.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <numeric>
#include <thread>

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

nlohmann::json describe_plan(const SplitPlan& plan) {
    const uint64_t ps = plan.image.page_size;
    std::array<uint64_t, kPageClasses> runs{};
    for (const auto& r : plan.runs) runs[static_cast<int>(r.cls)]++;
    nlohmann::json j = {
        {"image_pages", plan.image.pages()},
        {"image_bytes", plan.image.size_bytes},
        {"page_size_bytes", ps},
        {"image_fingerprint", hash::to_hex(plan.image.fingerprint)},
    };
    for (int c = 0; c < kPageClasses; ++c) {
        const std::string name = class_name(static_cast<PageClass>(c));
        j[name + "_pages"] = plan.pages_per_class[c];
        j[name + "_bytes"] = plan.pages_per_class[c] * ps;
        j[name + "_runs"] = runs[c];
    }
    j["class_runs"] = plan.runs.size();
    j["extents"] = plan.extents.size();
    j["touched_pages"] = plan.order.size();
    return j;
}

namespace {

// The classifier over any zero test (a bitmap from the scan, or a vector<bool> in tests).
// Memory: the plan itself plus 24 bytes per touched page — nothing per image page.
template <class IsZero>
SplitPlan classify(const ImageIdentity& image, const IsZero& is_zero, const LoadingSet& touched, const SplitOptions& opt) {
    const uint64_t pages = image.pages();
    SplitPlan plan;
    plan.image = image;
    // Touched pages in address order with their first-touch position. A page listed twice
    // keeps its last listing (as an array indexed by page would).
    struct Touched {
        uint64_t page, pos;
        uint8_t access;
    };
    std::vector<Touched> by_page;
    by_page.reserve(touched.touches.size());
    plan.order.reserve(touched.touches.size());
    for (uint64_t i = 0; i < touched.touches.size(); ++i) {
        const Touch& t = touched.touches[i];
        by_page.push_back({t.page, i, t.access});
        plan.order.push_back({t.page, t.rank, t.access});
    }
    std::stable_sort(by_page.begin(), by_page.end(), [](const Touched& a, const Touched& b) { return a.page < b.page; });
    {
        size_t out = 0;
        for (size_t i = 0; i < by_page.size(); ++i) {
            if (i + 1 < by_page.size() && by_page[i + 1].page == by_page[i].page) continue;
            by_page[out++] = by_page[i];
        }
        by_page.resize(out);
    }
    const bool writes_known = touched.knows_writes;
    // Runs, and for each hot run its earliest first touch.
    std::vector<uint64_t> run_first;  // parallel to plan.runs
    size_t k = 0;
    for (uint64_t p = 0; p < pages; ++p) {
        while (k < by_page.size() && by_page[k].page < p) ++k;
        const bool is_touched = k < by_page.size() && by_page[k].page == p;
        PageClass c;
        uint64_t first = UINT64_MAX;
        if (is_zero(p)) {
            c = PageClass::zero;
        } else if (!is_touched) {
            c = PageClass::cold;
        } else {
            bool written = writes_known ? (by_page[k].access & kAccessWrite) != 0 : opt.assume_written;
            c = written ? PageClass::rw : PageClass::ro;
            first = by_page[k].pos;
        }
        plan.pages_per_class[static_cast<int>(c)]++;
        if (!plan.runs.empty() && plan.runs.back().cls == c) {
            plan.runs.back().pages++;
            run_first.back() = std::min(run_first.back(), first);
        } else {
            plan.runs.push_back({p, 1, c});
            run_first.push_back(first);
        }
    }
    // Extents: the non-zero runs; hot ones ordered by their earliest first touch.
    std::vector<std::pair<uint64_t, Extent>> hot[2];  // [0] = rw, [1] = ro
    std::vector<Extent> cold;
    for (size_t i = 0; i < plan.runs.size(); ++i) {
        const ClassRun& r = plan.runs[i];
        if (r.cls == PageClass::zero) continue;
        Extent e{r.start_page, r.pages, r.cls, 0};
        if (r.cls == PageClass::cold) cold.push_back(e);
        else hot[r.cls == PageClass::rw ? 0 : 1].push_back({run_first[i], e});
    }
    for (auto& h : hot) {
        // First touches are distinct (one position per listed page), so the order is total.
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

// Pages scanned per task: a multiple of 64 (one bitmap word), about 16 MiB.
uint64_t scan_task_pages(uint32_t page_size) {
    return std::max<uint64_t>(64, ((16u << 20) / page_size + 63) / 64 * 64);
}

}  // namespace

unsigned split_threads(unsigned requested) {
    if (requested) return requested;
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

SplitPlan classify_pages(const ImageIdentity& image, const std::vector<bool>& zero, const LoadingSet& touched,
                         const SplitOptions& opt) {
    return classify(image, [&](uint64_t p) { return static_cast<bool>(zero[p]); }, touched, opt);
}

SplitPlan plan_split(const Image& image, const LoadingSet& touched, const SplitOptions& opt,
                     const std::function<void(uint64_t)>& progress) {
    const uint64_t pages = image.pages();
    const uint32_t ps = image.page_size();
    const unsigned threads = split_threads(opt.threads);
    // One bit per page (32 KiB per GiB of 4 KiB pages); each scan task owns whole words.
    std::vector<uint64_t> zero_map((pages + 63) / 64, 0);
    image.advise_sequential();
    const bool hash_it = !image.has_fingerprint();
    const uint64_t task_pages = scan_task_pages(ps);
    const uint64_t tasks = (pages + task_pages - 1) / task_pages;
    std::atomic<uint64_t> next_task{0}, scanned{0}, hashed{0};
    auto scan_task = [&](uint64_t t) {
        const uint64_t from = t * task_pages, to = std::min(pages, from + task_pages);
        for (uint64_t w = from / 64; w * 64 < to; ++w) {
            uint64_t bits = 0;
            for (uint64_t p = w * 64; p < std::min(to, w * 64 + 64); ++p)
                if (image.is_zero(p)) bits |= uint64_t{1} << (p - w * 64);
            zero_map[w] = bits;
        }
        scanned.fetch_add(to - from, std::memory_order_relaxed);
    };
    auto scan_worker = [&] {
        for (uint64_t t; (t = next_task.fetch_add(1, std::memory_order_relaxed)) < tasks;) scan_task(t);
    };
    uint64_t fp = 0;
    if (threads == 1) {
        // One thread: hash and zero-check each task's bytes together, while they are in cache.
        hash::Xxh3Stream h;
        for (uint64_t t = 0; t < tasks; ++t) {
            const uint64_t from = t * task_pages, n = std::min(task_pages, pages - from);
            if (hash_it) h.update(image.page(from), n * ps);
            scan_task(t);
            if (progress) progress(from + n);
        }
        fp = h.digest();
    } else {
        // The fingerprint is one sequential stream (XXH3 cannot be split): one thread hashes
        // while the others zero-check page ranges; without a hash, every thread scans.
        std::vector<std::thread> pool;
        std::atomic<bool> hash_done{!hash_it};
        if (hash_it)
            pool.emplace_back([&] {
                hash::Xxh3Stream h;
                for (uint64_t t = 0; t < tasks; ++t) {
                    const uint64_t from = t * task_pages, n = std::min(task_pages, pages - from);
                    h.update(image.page(from), n * ps);
                    hashed.store(from + n, std::memory_order_relaxed);
                }
                fp = h.digest();
                hash_done.store(true);
            });
        for (unsigned i = hash_it ? 1 : 0; i < threads; ++i) pool.emplace_back(scan_worker);
        // This thread reports progress meanwhile.
        while (progress && (scanned.load() < pages || !hash_done.load())) {
            progress(hash_it ? std::min(scanned.load(), hashed.load()) : scanned.load());
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        for (auto& th : pool) th.join();
    }
    if (hash_it) image.remember_fingerprint(fp);
    if (progress) progress(pages);
    return classify(image.identity(), [&](uint64_t p) { return (zero_map[p / 64] >> (p % 64)) & 1; }, touched, opt);
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

namespace {

// The bytes of one class's page-data chunk: its extents in data order, as spans of the image
// mapping (adjacent extents merged).
std::vector<std::span<const std::byte>> class_spans(const Image& image, const SplitPlan& plan, PageClass c) {
    std::vector<std::span<const std::byte>> spans;
    const uint64_t ps = image.page_size();
    for (auto& e : plan.extents) {
        if (e.cls != c) continue;
        const std::byte* at = image.page(e.image_page);
        const size_t n = e.pages * ps;
        if (!spans.empty() && spans.back().data() + spans.back().size() == at) spans.back() = {spans.back().data(), spans.back().size() + n};
        else spans.push_back({at, n});
    }
    return spans;
}

uint64_t hash_spans(const std::vector<std::span<const std::byte>>& spans) {
    hash::Xxh3Stream h;
    for (auto& s : spans) h.update(s.data(), s.size());
    return h.digest();
}

// Page data straight from the image mapping to the output, one write per span (a run of
// adjacent extents; at most 64 MiB a call), no copy through a buffer of ours. With `h`, the
// bytes are hashed just before they are written (one thread: while they are in cache).
// Not writev: gathering 1024 runs per call measured 2-3x slower into ext4 here.
void write_spans(file::AtomicOutput& out, const std::vector<std::span<const std::byte>>& spans, hash::Xxh3Stream* h) {
    constexpr size_t kMaxBytes = size_t{64} << 20;
    for (auto& s : spans)
        for (size_t off = 0; off < s.size();) {
            const size_t n = std::min(s.size() - off, kMaxBytes);
            if (h) h->update(s.data() + off, n);
            out.write(s.data() + off, n);
            out.write_behind();
            off += n;
        }
}

}  // namespace

uint64_t write_split(const Image& image, const SplitPlan& plan, const std::string& path, uint64_t parent_digest,
                     const std::function<void()>& before_commit, unsigned threads, bool* unchanged) {
    threads = split_threads(threads);
    const uint32_t ps = image.page_size();
    constexpr PageClass kDataClasses[] = {PageClass::rw, PageClass::ro, PageClass::cold};
    std::array<std::vector<std::span<const std::byte>>, 3> spans;
    for (int i = 0; i < 3; ++i) spans[i] = class_spans(image, plan, kDataClasses[i]);
    // The chunk checksums: on other threads, over the same bytes, while this one writes (one
    // thread per chunk when there are enough, else one for the three in order); with one
    // thread, while writing.
    std::array<std::promise<uint64_t>, 3> sum;
    std::array<std::future<uint64_t>, 3> sum_of;
    for (int i = 0; i < 3; ++i) sum_of[i] = sum[i].get_future();
    std::vector<std::future<void>> hashers;  // joined when they go out of scope, whatever happens
    auto hash_chunks = [&](int from, int to) {
        return std::async(std::launch::async, [&, from, to] {
            for (int i = from; i < to; ++i) sum[i].set_value(hash_spans(spans[i]));
        });
    };
    if (threads >= 4)
        for (int i = 0; i < 3; ++i) hashers.push_back(hash_chunks(i, i + 1));
    else if (threads >= 2)
        hashers.push_back(hash_chunks(0, 3));

    ArtifactWriter w(Kind::split, ps, parent_digest);
    add_plan_chunks(w, plan);
    for (int i = 0; i < 3; ++i) {
        const uint64_t bytes = plan.pages_per_class[static_cast<int>(kDataClasses[i])] * ps;
        DirectChunk chunk;
        chunk.write = [&, i](file::AtomicOutput& o) {
            if (!hashers.empty()) return write_spans(o, spans[i], nullptr);
            hash::Xxh3Stream h;
            write_spans(o, spans[i], &h);
            sum[i].set_value(h.digest());
        };
        chunk.checksum = [&, i] { return sum_of[i].get(); };
        w.add_chunk(data_chunk(kDataClasses[i]), bytes, std::move(chunk), kChunkRequired | kChunkPageAligned);
    }
    file::AtomicOutput out(path);
    const uint64_t d = w.finish(out);
    if (before_commit) before_commit();
    const bool same = out.commit();
    if (unchanged) *unchanged = same;
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

SplitReader::SplitReader(const std::string& path) : SplitReader(file::InputFile(path, file::InputFile::Expect::artifact)) {}

SplitReader::SplitReader(file::InputFile file)
    : artifact_(std::move(file), Kind::split, 0, {kImgi, kMeta, kClas, kOrdr, kExtn, kPgrw, kPgro, kPgcl}) {
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
    // One progress line for the pass, over the three classes' page data.
    uint64_t total = 0, done = 0;
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) total += class_data(c).size();
    cli::Progress progress("verifying page data", total, "bytes");
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        done += class_data(c, true).size();
        progress.update(done);
    }
}

}  // namespace snap

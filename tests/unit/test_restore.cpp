// SPDX-License-Identifier: Apache-2.0
// The restore schedule (common/restore/plan.hpp) on hand-made split plans: every page's
// origin is right under every strategy and gap, for both front-ends (--exec's layers and
// --serve's install list come from the one schedule), merging respects a mapping budget, the
// hand-over encoding round-trips and refuses corrupt bytes.
#include "common/error.hpp"
#include "common/restore/plan.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

using namespace snap;
using namespace snap::restore;

namespace {

constexpr uint32_t kPs = 4096;

// 64 pages: zero [0,10) rw [10,12) cold [12,20) ro [20,21) zero [21,40) ro [40,50)
// cold [50,52) zero [52,54) cold [54,64)
SplitPlan fixture() {
    SplitPlan p;
    p.image = {64 * kPs, kPs, 0x1234};
    p.runs = {{0, 10, PageClass::zero},  {10, 2, PageClass::rw},  {12, 8, PageClass::cold},
              {20, 1, PageClass::ro},    {21, 19, PageClass::zero}, {40, 10, PageClass::ro},
              {50, 2, PageClass::cold},  {52, 2, PageClass::zero}, {54, 10, PageClass::cold}};
    // RW, then RO in first-touch order (40.. touched before 20), then COLD in address order.
    p.extents = {{10, 2, PageClass::rw, 0},   {40, 10, PageClass::ro, 0}, {20, 1, PageClass::ro, 10},
                 {12, 8, PageClass::cold, 0}, {50, 2, PageClass::cold, 8}, {54, 10, PageClass::cold, 10}};
    uint32_t rank = 0;
    for (uint64_t pg : {41, 40, 11, 10, 20, 5})  // 5 is a touched zero page
        p.order.push_back({pg, rank++, kAccessRead});
    p.pages_per_class = {31, 11, 2, 20};
    return p;
}

// layout: the RO part has an image-order layout file (snap-place writes one on a
// byte-addressable tier), so tiered takes its userfaultfd schedule.
std::vector<PartRef> parts(bool cold_raw = true, bool layout = false) {
    return {{PageClass::rw, "/p/rw", 0, true, {}},
            {PageClass::ro, "/p/ro", 8192, true, layout ? "/p/ro.layout" : ""},
            {PageClass::cold, "/p/cold", 0, cold_raw, {}}};
}

// The "bytes" of a page: its image page number + 1 for data pages, 0 for zero pages.
uint64_t expected_tag(const SplitPlan& s, uint64_t page) {
    for (const auto& r : s.runs)
        if (page >= r.start_page && page < r.start_page + r.pages) return r.cls == PageClass::zero ? 0 : page + 1;
    return ~0ull;
}

// What a file holds at an offset, with the fixture's layout.
uint64_t tag_at(const SplitPlan& s, const MappingPlan& m, const std::vector<PartRef>& ps, PageOrigin o, uint64_t page) {
    if (o.file == kNoFile) return 0;
    if (o.file == kImageFile) return expected_tag(s, o.offset / kPs);
    if (o.file == kDemand) {
        // Served by the fault server from the parts (PlacedSource, tested on bytes elsewhere):
        // only a schedule served over userfaultfd may leave a page to it.
        CHECK(m.demand);
        return expected_tag(s, page);
    }
    if (o.file == m.base_file) {  // a layout file: the page at its own image offset
        CHECK(m.base == Base::file);
        CHECK(o.offset == page * kPs);
        for (const auto& e : s.extents)
            if (e.cls == PageClass::ro && page >= e.image_page && page < e.image_page + e.pages) return page + 1;
        FAIL("a layout page outside the RO extents");
    }
    const std::string& path = m.files.at(o.file).path;
    for (const auto& p : ps) {
        if (p.path != path) continue;
        REQUIRE(o.offset >= p.offset);
        uint64_t dp = (o.offset - p.offset) / kPs;
        for (const auto& e : s.extents)
            if (e.cls == p.cls && dp >= e.data_page && dp < e.data_page + e.pages) return e.image_page + (dp - e.data_page) + 1;
    }
    FAIL("offset outside every part");
    return ~0ull;
}

void check_every_page(const SplitPlan& s, const MappingPlan& m, const std::vector<PartRef>& ps) {
    auto origins = page_origins(m);
    REQUIRE(origins.size() == 64);
    for (uint64_t p = 0; p < 64; ++p) {
        CAPTURE(p);
        CHECK(tag_at(s, m, ps, origins[p], p) == expected_tag(s, p));
    }
    uint64_t total = 0;
    for (auto& row : m.pages)
        for (auto n : row) total += n;
    CHECK(total == 64);
}

}  // namespace

TEST_CASE("restore plan: every page's origin is right, every strategy and gap") {
    const SplitPlan s = fixture();
    for (bool layout : {false, true})
    for (bool cold_raw : {true, false})
        for (auto st : {Strategy::vanilla, Strategy::reap, Strategy::faasnap, Strategy::tiered})
            for (uint64_t gap : {1, 2, 4, 32, 1000}) {
                CAPTURE(strategy_name(st));
                CAPTURE(gap);
                CAPTURE(cold_raw);
                CAPTURE(layout);
                auto ps = parts(cold_raw, layout);
                BuildOptions o;
                o.strategy = st;
                o.gap_pages = gap;
                MappingPlan m = build_plan(s, ps, "/img", o);
                check_every_page(s, m, ps);
                CHECK(m.mappings == count_mappings(m));
                uint64_t prev = 0;
                for (const auto& op : m.ops) {
                    CHECK(op.first_page >= prev);
                    prev = op.first_page + op.pages;
                }
            }
}

TEST_CASE("restore plan: strategies place classes as documented (gap 1: no merging)") {
    const SplitPlan s = fixture();
    auto ps = parts();
    BuildOptions o;
    o.gap_pages = 1;
    auto idx = [](PageClass c) { return static_cast<int>(c); };
    auto mech = [](Mechanism m) { return static_cast<int>(m); };

    o.strategy = Strategy::vanilla;
    MappingPlan v = build_plan(s, ps, "/img", o);
    CHECK(v.ops.empty());
    CHECK(v.mappings == 1);
    CHECK(v.files.size() == 1);

    // REAP: the working set (every touched page, the zero one too) installed over userfaultfd
    // in first-touch order, one page at a time here since no two touches are neighbours in
    // that order; the rest on demand; anonymous memory underneath, no mapping laid per run.
    o.strategy = Strategy::reap;
    MappingPlan r = build_plan(s, ps, "/img", o);
    CHECK(r.demand);
    CHECK(r.base == Base::anon);
    CHECK(r.ops.empty());
    CHECK(r.mappings == 1);
    CHECK(r.pages[idx(PageClass::rw)][mech(Mechanism::install)] == 2);
    CHECK(r.pages[idx(PageClass::ro)][mech(Mechanism::install)] == 11 - 8);  // 41, 40, 20 touched
    CHECK(r.pages[idx(PageClass::ro)][mech(Mechanism::demand)] == 8);
    CHECK(r.pages[idx(PageClass::zero)][mech(Mechanism::install)] == 1);
    CHECK(r.pages[idx(PageClass::cold)][mech(Mechanism::demand)] == 20);
    CHECK(r.eager == std::vector<PageSpan>{{41, 1}, {40, 1}, {11, 1}, {10, 1}, {20, 1}, {5, 1}});
    CHECK(r.copy_bytes == 5 * kPs);
    CHECK(serve_installs(r) == r.eager);  // --serve installs the same pages

    o.strategy = Strategy::faasnap;
    MappingPlan f = build_plan(s, ps, "/img", o);
    CHECK(f.pages[idx(PageClass::zero)][mech(Mechanism::anon)] == 31);
    CHECK(f.pages[idx(PageClass::ro)][mech(Mechanism::map)] == 11);
    CHECK(f.pages[idx(PageClass::rw)][mech(Mechanism::map)] == 2);
    CHECK(f.pages[idx(PageClass::cold)][mech(Mechanism::image)] == 20);
    // prefetch in first-touch order: the RO extent at 40 (ranks 0,1), then RW at 10, then RO at 20
    REQUIRE(f.prefetch.size() == 3);
    CHECK(f.prefetch[0] == PageSpan{40, 10});
    CHECK(f.prefetch[1] == PageSpan{10, 2});
    CHECK(f.prefetch[2] == PageSpan{20, 1});

    CHECK(f.in_place == f.prefetch);
    CHECK(serve_installs(f) == std::vector<PageSpan>{{40, 10}, {10, 2}, {20, 1}});

    // tiered with the RO layout file: one mapping of it in place, RW and the touched zero page
    // installed before the guest runs, ZERO and COLD on demand.
    o.strategy = Strategy::tiered;
    o.drain_cold = true;
    auto lps = parts(true, true);
    MappingPlan u = build_plan(s, lps, "/img", o);
    CHECK(u.demand);
    CHECK(u.base == Base::file);
    REQUIRE(u.base_file >= 0);
    CHECK(u.files[u.base_file].path == "/p/ro.layout");
    CHECK(u.ops.empty());
    CHECK(u.mappings == 1);
    CHECK(u.eager == std::vector<PageSpan>{{10, 2}, {5, 1}});
    CHECK(u.in_place == std::vector<PageSpan>{{40, 10}, {20, 1}});
    CHECK(u.pages[idx(PageClass::ro)][mech(Mechanism::map)] == 11);
    CHECK(u.pages[idx(PageClass::rw)][mech(Mechanism::install)] == 2);
    CHECK(u.pages[idx(PageClass::zero)][mech(Mechanism::install)] == 1);
    CHECK(u.pages[idx(PageClass::zero)][mech(Mechanism::demand)] == 30);
    CHECK(u.pages[idx(PageClass::cold)][mech(Mechanism::demand)] == 20);
    CHECK(u.copy_bytes == 2 * kPs);
    CHECK(u.drain.size() == 3);
    CHECK(u.notes.empty());
    // --serve: Firecracker's memory cannot map the layout: RW and the zero page, then RO in
    // first-touch order.
    CHECK(serve_installs(u) == std::vector<PageSpan>{{10, 2}, {5, 1}, {40, 10}, {20, 1}});
    // no RO pages at all: anonymous memory underneath, still the userfaultfd schedule
    {
        std::vector<PartRef> no_ro = {lps[0], lps[2]};
        MappingPlan a = build_plan(s, no_ro, "/img", o);
        CHECK(a.demand);
        CHECK(a.base == Base::anon);
    }

    // tiered without a usable layout file: the layered mappings, with a note saying why.
    MappingPlan t = build_plan(s, ps, "/img", o);
    CHECK(!t.demand);
    CHECK(serve_installs(t) == serve_installs(u));  // one definition, whichever layers exec lays
    REQUIRE(!t.notes.empty());
    CHECK(t.notes.back().find("no image-order layout") != std::string::npos);
    CHECK(t.pages[idx(PageClass::rw)][mech(Mechanism::copy)] == 2);
    CHECK(t.pages[idx(PageClass::ro)][mech(Mechanism::map)] == 11);
    CHECK(t.pages[idx(PageClass::cold)][mech(Mechanism::map)] == 20);
    // zero [0,10) borders the RW copy at 10: one anonymous span, its zero pages read nothing
    CHECK(t.pages[idx(PageClass::zero)][mech(Mechanism::anon)] + t.pages[idx(PageClass::zero)][mech(Mechanism::copy)] == 31);
    CHECK(t.drain.size() == 3);
    // the COLD extents 50..52 and 54..64 sit back to back in the cold part but not in the image
    // (zero pages between): they stay two mappings.
    CHECK(t.copy_bytes == 2 * kPs);
}

TEST_CASE("restore plan: a compressed part falls back to the image, with a note") {
    const SplitPlan s = fixture();
    auto ps = parts(false);
    BuildOptions o;
    o.strategy = Strategy::tiered;
    o.gap_pages = 1;
    MappingPlan t = build_plan(s, ps, "/img", o);
    CHECK(t.pages[static_cast<int>(PageClass::cold)][static_cast<int>(Mechanism::image)] == 20);
    REQUIRE(!t.notes.empty());
    CHECK(t.notes[0].find("cold part is compressed") != std::string::npos);
    // The userfaultfd schedule serves a compressed COLD part on demand (frame by frame): no fall-back.
    MappingPlan u = build_plan(s, parts(false, true), "/img", o);
    CHECK(u.pages[static_cast<int>(PageClass::cold)][static_cast<int>(Mechanism::demand)] == 20);
    CHECK(u.notes.empty());
}

TEST_CASE("restore plan: merging across gaps and the mapping budget") {
    const SplitPlan s = fixture();
    auto ps = parts();
    BuildOptions o;
    o.strategy = Strategy::tiered;  // layered: the RW copy op merges with its zero neighbours
    o.gap_pages = 1;
    MappingPlan small = build_plan(s, ps, "/img", o);
    o.gap_pages = 32;
    MappingPlan merged = build_plan(s, ps, "/img", o);
    CHECK(merged.mappings <= small.mappings);
    CHECK(merged.ops.size() < small.ops.size());
    check_every_page(s, merged, ps);
    // zero [0,10) and RW [10,12) become one copy op: only the RW pages are read
    REQUIRE(!merged.ops.empty());
    CHECK(merged.ops[0].first_page == 0);
    CHECK(merged.ops[0].kind == OpKind::copy);
    CHECK(merged.copy_bytes == 2 * kPs);

    // A budget forces a wider gap; the plan stays correct and within it.
    o.gap_pages = 1;
    o.strategy = Strategy::faasnap;
    MappingPlan wide = build_plan(s, ps, "/img", o);
    o.max_mappings = 4;
    MappingPlan tight = build_plan(s, ps, "/img", o);
    CHECK(wide.mappings > 4);
    CHECK(tight.mappings <= 4);
    CHECK(tight.gap_pages > 1);
    check_every_page(s, tight, ps);

    o.strategy = Strategy::tiered;  // layered: the RW copy needs its own mapping beside the image's
    o.max_mappings = 1;
    CHECK_THROWS_AS(build_plan(s, ps, "/img", o), UsageError);
}

TEST_CASE("restore plan: count_mappings merges what the kernel merges") {
    MappingPlan m;
    m.image_pages = 100;
    m.files = {{"/img"}, {"/part"}};
    CHECK(count_mappings(m) == 1);
    m.ops = {{OpKind::anon, 0, 10}, {OpKind::copy, 10, 5}};
    CHECK(count_mappings(m) == 2);  // anon + anon, then the image
    m.ops.push_back({OpKind::map, 20, 5, 1, 0});
    m.ops.push_back({OpKind::map, 25, 5, 1, 5 * 4096});  // contiguous in the part
    CHECK(count_mappings(m) == 4);                       // anon, image, part, image
    m.ops.push_back({OpKind::map, 30, 5, 0, 30 * 4096});  // the image at its own offset: merges
    CHECK(count_mappings(m) == 4);
}

TEST_CASE("restore plan: encode/decode round trip and corrupt input") {
    const SplitPlan s = fixture();
    auto ps = parts();
    for (auto st : {Strategy::vanilla, Strategy::reap, Strategy::faasnap, Strategy::tiered, Strategy(99)}) {
        BuildOptions o;
        o.strategy = st == Strategy(99) ? Strategy::tiered : st;
        o.drain_cold = o.strategy == Strategy::tiered;
        MappingPlan m = build_plan(s, st == Strategy(99) ? parts(true, true) : ps, "/img", o);
        auto bytes = encode(m);
        CHECK(decode(bytes, "plan") == m);
        for (size_t cut : {size_t(0), size_t(7), bytes.size() / 2, bytes.size() - 1}) {
            std::vector<std::byte> t(bytes.begin(), bytes.begin() + cut);
            CHECK_THROWS_AS(decode(t, "plan"), BadInput);
        }
        if (!m.ops.empty()) {
            auto bad = bytes;
            bad[8 + 6 * 8] = std::byte{0xff};  // the file count: absurd
            CHECK_THROWS_AS(decode(bad, "plan"), BadInput);
        }
    }
    CHECK(strategy_from_name("tiered") == Strategy::tiered);
    CHECK(!strategy_from_name("lazy"));
}

TEST_CASE("restore plan: tiered fills RW-dense 2 MiB regions as huge pages; both front-ends see it") {
    // 2048 pages (4 regions of 512): region 1 is mostly RW (300 of its pages), with RO and ZERO
    // pages; region 2 has 100 RW pages (sparse) and COLD ones; the rest is ZERO. A region with
    // COLD pages is never made huge (they would be read on the critical path).
    SplitPlan s;
    s.image = {2048 * kPs, kPs, 0x99};
    s.runs = {{0, 512, PageClass::zero},   {512, 300, PageClass::rw},  {812, 100, PageClass::ro},
              {912, 112, PageClass::zero}, {1024, 100, PageClass::rw},  {1124, 412, PageClass::cold},
              {1536, 512, PageClass::zero}};
    s.extents = {{512, 300, PageClass::rw, 0}, {1024, 100, PageClass::rw, 300}, {812, 100, PageClass::ro, 0},
                 {1124, 412, PageClass::cold, 0}};
    uint32_t rank = 0;
    for (uint64_t pg = 512; pg < 912; pg += 7) s.order.push_back({pg, rank++, kAccessRead});
    for (uint64_t pg = 1024; pg < 1124; ++pg) s.order.push_back({pg, rank++, kAccessRead | kAccessWrite});
    s.pages_per_class = {512 + 112 + 512, 100, 400, 412};
    std::vector<PartRef> ps = {{PageClass::rw, "/p/rw", 0, true, {}},
                               {PageClass::ro, "/p/ro", 0, true, "/p/ro.layout"},
                               {PageClass::cold, "/p/cold", 0, true, {}}};
    BuildOptions o;
    o.strategy = Strategy::tiered;
    o.huge_rw_pages = 256;  // on (snap-restore --huge-regions 256; off by default)
    MappingPlan m = build_plan(s, ps, "/img", o);
    REQUIRE(m.demand);
    CHECK(m.huge);
    REQUIRE(m.ops.size() == 1);  // region 1 only: region 2 has too few RW pages
    CHECK(m.ops[0].first_page == 512);
    CHECK(m.ops[0].pages == 512);
    CHECK(m.ops[0].kind == OpKind::copy);
    // Every page of the region comes from its part (or is zero); the rest as before.
    auto origins = page_origins(m);
    for (uint64_t p = 512; p < 1024; ++p) {
        CAPTURE(p);
        const auto& c = origins[p];
        if (p < 812) CHECK((m.files.at(c.file).path == "/p/rw" && c.offset == (p - 512) * kPs));
        else if (p < 912) CHECK((m.files.at(c.file).path == "/p/ro" && c.offset == (p - 812) * kPs));
        else CHECK(c.file == kNoFile);
    }
    // --exec: the server installs only the RW pages outside the huge region and treats the
    // region and the in-place RO pages as present; --serve installs every eager page.
    CHECK(exec_installs(m) == std::vector<PageSpan>{{1024, 100}});
    auto present = exec_present(m);
    CHECK(std::find(present.begin(), present.end(), PageSpan{512, 512}) != present.end());
    uint64_t eager_total = 0;
    for (const auto& sp : m.eager) eager_total += sp.pages;
    CHECK(eager_total == 400);
    CHECK(serve_installs(m).front() == PageSpan{512, 300});
    REQUIRE(!m.notes.empty());
    CHECK(m.notes.back().find("212 pages of private DRAM beyond") != std::string::npos);
    CHECK(m.mappings == 3);  // layout, the huge region, layout
    CHECK(decode(encode(m), "plan") == m);
    o.huge_rw_pages = 0;  // off: no ops, one mapping
    MappingPlan flat = build_plan(s, ps, "/img", o);
    CHECK(flat.ops.empty());
    CHECK(flat.mappings == 1);
    CHECK(exec_installs(flat) == flat.eager);
    // Before the guest runs (no --overlap) the same pages, in address order, adjacent spans merged.
    std::vector<PageSpan> sorted = flat.eager;
    std::sort(sorted.begin(), sorted.end(), [](const PageSpan& x, const PageSpan& y) { return x.first_page < y.first_page; });
    const auto before = exec_installs(flat, true);
    uint64_t total = 0, want = 0;
    for (size_t i = 0; i < before.size(); ++i) {
        total += before[i].pages;
        if (i > 0) CHECK(before[i].first_page > before[i - 1].end_page());  // ordered, disjoint, not adjacent
    }
    for (const auto& sp : flat.eager) want += sp.pages;
    CHECK(total == want);
    CHECK(before.front().first_page == sorted.front().first_page);
    CHECK(before.back().end_page() == sorted.back().end_page());
}

TEST_CASE("restore plan: installs before the guest runs come in address order, touched-apart neighbours merged") {
    MappingPlan m;
    m.image_pages = 64;
    m.eager = {{10, 2}, {4, 3}, {12, 1}, {7, 1}, {30, 4}, {20, 1}};  // first-touch order
    CHECK(exec_installs(m) == m.eager);                               // --overlap: kept as is
    CHECK(exec_installs(m, true) == std::vector<PageSpan>{{4, 4}, {10, 3}, {20, 1}, {30, 4}});
}

TEST_CASE("restore plan: tiered with RO in a pool installs RO eagerly after RW, everything else on demand") {
    const SplitPlan s = fixture();
    std::vector<PartRef> ps = {{PageClass::rw, "/p/rw", 0, true, {}},
                               {PageClass::ro, "redis://h:1/ns#1.ro", 0, false, {}, true},
                               {PageClass::cold, "redis://h:1/ns#1.cold", 0, false, {}, true}};
    BuildOptions o;
    o.strategy = Strategy::tiered;
    MappingPlan u = build_plan(s, ps, "/img", o);
    CHECK(u.demand);
    CHECK(u.base == Base::anon);
    CHECK(u.ops.empty());
    CHECK(u.in_place.empty());
    // RW, the touched zero page, then RO in first-touch order.
    CHECK(u.eager == std::vector<PageSpan>{{10, 2}, {5, 1}, {40, 10}, {20, 1}});
    CHECK(u.pages[static_cast<int>(PageClass::ro)][static_cast<int>(Mechanism::install)] == 11);
    CHECK(u.pages[static_cast<int>(PageClass::cold)][static_cast<int>(Mechanism::demand)] == 20);
    CHECK(u.files.size() == 1);  // the image only: nothing of it is read (a placeholder will do)
}

TEST_CASE("restore plan: tiered and faasnap with uffd_only (guest memory on hugetlbfs) install what they would map") {
    const SplitPlan s = fixture();
    BuildOptions o;
    o.strategy = Strategy::tiered;
    o.uffd_only = true;
    for (bool layout : {false, true}) {
        CAPTURE(layout);
        MappingPlan u = build_plan(s, parts(true, layout), "/img", o);
        CHECK(u.demand);
        CHECK(u.base == Base::anon);  // nothing mapped over the VMM's memory: the preload makes it huge
        CHECK(u.ops.empty());
        CHECK(u.in_place.empty());
        CHECK(u.eager == std::vector<PageSpan>{{10, 2}, {5, 1}, {40, 10}, {20, 1}});
        check_every_page(s, u, parts(true, layout));
    }
    o.uffd_only = false;  // without it: the layout file is mapped in place, or one mapping per run
    CHECK(build_plan(s, parts(true, true), "/img", o).base == Base::file);
    CHECK_FALSE(build_plan(s, parts(true, false), "/img", o).demand);
    // faasnap: its loading set (RW and RO extents by first touch) installed, the rest on demand.
    o.strategy = Strategy::faasnap;
    o.uffd_only = true;
    MappingPlan f = build_plan(s, parts(true, true), "/img", o);
    CHECK(f.demand);
    CHECK(f.base == Base::anon);
    CHECK(f.ops.empty());
    CHECK(f.prefetch.empty());
    CHECK(f.files.size() == 1);
    CHECK(f.eager == std::vector<PageSpan>{{40, 10}, {10, 2}, {20, 1}});
    CHECK(serve_installs(f) == f.eager);
    check_every_page(s, f, parts(true, true));
    o.uffd_only = false;
    CHECK_FALSE(build_plan(s, parts(true, true), "/img", o).demand);
}

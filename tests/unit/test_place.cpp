// SPDX-License-Identifier: Apache-2.0
// Units for snap-place: tier spellings, sizes, the cost model's choices under budgets, the
// placed manifest's round trip and corruption checks, and materialize.
#include "common/costmodel.hpp"
#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/placed.hpp"
#include "common/tier.hpp"
#include "testdata.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace snap;
using tier::TierKind;
using tier::TierSpec;

namespace {

std::string scratch_dir(const char* tag) {
    static int n = 0;
    std::string d = "/tmp/snapkit-unit-place-" + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" + tag;
    ::mkdir(d.c_str(), 0755);
    return d;
}

std::vector<char> slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

void spit(const std::string& p, const std::vector<char>& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

TierSpec mk(TierKind k, std::string loc, uint64_t budget = tier::kUnlimited) {
    TierSpec t;
    t.kind = k;
    t.location = std::move(loc);
    t.node = k == TierKind::numa ? 0 : -1;
    t.budget_bytes = budget;
    return t;
}

// A 64-page image: pages 0-9 zero, 10-19 rw, 20-29 ro, 30-49 cold, 50-63 zero; returns split path.
std::string make_split(const std::string& dir) {
    const uint32_t ps = 4096;
    std::vector<char> img(64 * ps, 0);
    for (int p = 10; p < 50; ++p)
        for (uint32_t i = 0; i < ps; ++i) img[p * ps + i] = static_cast<char>((p * 31 + i * 7) | 1);
    std::string ip = dir + "/img";
    spit(ip, img);
    Image image(ip);
    LoadingSet ls;
    ls.image = image.identity();
    ls.method = "unit";
    ls.knows_writes = true;
    uint32_t rank = 0;
    for (int p = 25; p < 30; ++p) ls.touches.push_back({uint64_t(p), 0, rank++, kAccessRead});
    for (int p = 10; p < 20; ++p) ls.touches.push_back({uint64_t(p), 0, rank++, kAccessRead | kAccessWrite});
    for (int p = 20; p < 25; ++p) ls.touches.push_back({uint64_t(p), 0, rank++, kAccessRead});
    ls.touches.push_back({3, 0, rank++, kAccessWrite});  // a written zero page
    ls.normalize();
    auto plan = plan_split(image, ls, {});
    std::string sp = dir + "/s.split";
    write_split(image, plan, sp, 0x1234);
    return sp;
}

}  // namespace

TEST_CASE("tier spellings parse; bad ones are usage errors") {
    auto t = tier::parse_tier("dram");
    CHECK(t.kind == TierKind::dram);
    CHECK(t.location.empty());
    t = tier::parse_tier("numa:0:/stage/");
    CHECK(t.kind == TierKind::numa);
    CHECK(t.node == 0);
    CHECK(t.location == "/stage");
    CHECK(tier::parse_tier("dax:/mnt/pmem").name() == "dax:/mnt/pmem");
    CHECK(tier::parse_tier("file:/ssd").kind == TierKind::file);
    CHECK_THROWS_AS(tier::parse_tier("tape:/x"), UsageError);
    CHECK_THROWS_AS(tier::parse_tier("dax"), UsageError);
    CHECK_THROWS_AS(tier::parse_tier("numa:x"), UsageError);
    CHECK(tier::parse_size("4096") == 4096);
    CHECK(tier::parse_size("64k") == 65536);
    CHECK(tier::parse_size("1.5G") == 1610612736ull);
    CHECK(tier::parse_size("unlimited") == tier::kUnlimited);
    CHECK_THROWS_AS(tier::parse_size("12Q"), UsageError);
    CHECK_THROWS_AS(tier::parse_size("-1"), UsageError);
}

TEST_CASE("a NUMA node that does not exist is refused naming /sys/devices/system/node") {
    auto t = tier::parse_tier("numa:7");
    try {
        tier::resolve_location(t, "/tmp");
        FAIL("numa:7 accepted");
    } catch (const CapabilityError& e) {
        CHECK(std::string(e.what()).find("/sys/devices/system/node") != std::string::npos);
    }
}

TEST_CASE("cost parameters: defaults from FACTS.md, overrides, unknown names refused") {
    auto p = cost::Params::defaults();
    CHECK(p.of(TierKind::dram).read_gbps == doctest::Approx(15.4));
    CHECK(p.of(TierKind::file).random_read_us == doctest::Approx(37));
    p.set("dax.read_gbps=10");
    CHECK(p.of(TierKind::dax).read_gbps == doctest::Approx(10));
    p.apply_json(nlohmann::json::parse(R"({"restore": {"install_us": 2.1}, "model": {"slack": 0}})"), "x.json");
    CHECK(p.restore.install_us == doctest::Approx(2.1));
    CHECK(p.slack == 0);
    CHECK_THROWS_AS(p.set("dax.speed=1"), UsageError);
    CHECK_THROWS_AS(p.set("dax.read_gbps=0"), UsageError);
    CHECK_THROWS_AS(p.set("nonsense"), UsageError);
}

TEST_CASE("cost model: rw to dram, ro to dax, cold to the cheapest tier, under budgets") {
    const uint32_t ps = 4096;
    auto p = cost::Params::defaults();
    std::vector<TierSpec> tiers = {mk(TierKind::dram, "/d"), mk(TierKind::dax, "/x"), mk(TierKind::file, "/f")};
    std::array<uint64_t, kPageClasses> pages{100, 200, 300, 400};  // zero, ro, rw, cold
    std::array<int, kPageClasses> none{-1, -1, -1, -1};
    auto c = cost::choose(p, tiers, pages, none, ps);
    CHECK(c[int(PageClass::rw)] == 0);
    CHECK(c[int(PageClass::ro)] == 1);
    CHECK(c[int(PageClass::cold)] == 2);
    CHECK(c[int(PageClass::zero)] == -1);

    // DRAM too small for RW: it goes to the next fastest (dax).
    tiers[0].budget_bytes = 100 * ps;
    c = cost::choose(p, tiers, pages, none, ps);
    CHECK(c[int(PageClass::rw)] == 1);
    // dax full too: rw to file; ro (200 pages) fits dram's 100? no: file as well.
    tiers[1].budget_bytes = 10 * ps;
    c = cost::choose(p, tiers, pages, none, ps);
    CHECK(c[int(PageClass::rw)] == 2);
    CHECK(c[int(PageClass::ro)] == 2);

    // Without a file tier, cold goes to the cheaper byte-addressable tier.
    std::vector<TierSpec> two = {mk(TierKind::dram, "/d"), mk(TierKind::dax, "/x")};
    c = cost::choose(p, two, pages, none, ps);
    CHECK(c[int(PageClass::cold)] == 1);

    // Nothing fits: a usage error that says so.
    std::vector<TierSpec> tiny = {mk(TierKind::dram, "/d", ps)};
    CHECK_THROWS_AS(cost::choose(p, tiny, pages, none, ps), UsageError);

    // A user's choice is kept, and checked against its budget.
    std::array<int, kPageClasses> fixed{-1, -1, 2, -1};  // rw on file
    tiers = {mk(TierKind::dram, "/d"), mk(TierKind::dax, "/x"), mk(TierKind::file, "/f")};
    c = cost::choose(p, tiers, pages, fixed, ps);
    CHECK(c[int(PageClass::rw)] == 2);
    tiers[2].budget_bytes = ps;
    CHECK_THROWS_AS(cost::choose(p, tiers, pages, fixed, ps), UsageError);
}

TEST_CASE("cost model estimate: copy, map, on-demand, anonymous") {
    const uint32_t ps = 4096;
    auto p = cost::Params::defaults();
    TierSpec dram = mk(TierKind::dram, "/d"), dax = mk(TierKind::dax, "/x"), file = mk(TierKind::file, "/f");
    std::vector<cost::ClassPlacement> parts = {
        {PageClass::rw, 10, 10 * ps, 10 * ps, 0, &dram},
        {PageClass::ro, 20, 20 * ps, 20 * ps, 0, &dax},
        {PageClass::cold, 30, 30 * ps, 30 * ps, 0, &file},
    };
    auto e = cost::estimate(p, parts, {2, 3}, 50, ps);
    REQUIRE(e.classes.size() == 4);
    CHECK(e.classes[0].mechanism == "anonymous");
    CHECK(e.classes[0].restore_us == doctest::Approx(2 * 2.3 + 3 * 0.25));
    CHECK(e.classes[1].mechanism == "copy");
    CHECK(e.classes[1].restore_us == doctest::Approx(10 * (1.5 + 4096 / 15400.0)));
    CHECK(e.classes[2].mechanism == "map");
    CHECK(e.classes[2].restore_us == doctest::Approx(20 * 0.3));
    CHECK(e.classes[3].mechanism == "on-demand");
    CHECK(e.classes[3].restore_us == 0);
    CHECK(e.classes[3].us_per_page == doctest::Approx(13 + 37));
    CHECK(e.restore_us == doctest::Approx(e.classes[0].restore_us + e.classes[1].restore_us + e.classes[2].restore_us));
    CHECK(e.dram_bytes == 10 * ps);
    CHECK(e.private_dram_bytes == 12 * ps);
}

TEST_CASE("place, read back, materialize byte for byte; deterministic and idempotent") {
    std::string dir = scratch_dir("roundtrip");
    std::string sp = make_split(dir);
    ::mkdir((dir + "/dax").c_str(), 0755);
    ::mkdir((dir + "/ssd").c_str(), 0755);
    SplitReader split(sp);
    placed::PlaceRequest req;
    req.tiers = {mk(TierKind::dram, dir), mk(TierKind::dax, dir + "/dax"), mk(TierKind::file, dir + "/ssd")};
    req.compress = true;
    req.frame_bytes = 8192;
    auto res = placed::place(split, req, dir + "/p.placed");
    REQUIRE(res.manifest.parts.size() == 3);
    CHECK(res.manifest.parts[0].cls == PageClass::rw);
    CHECK(res.manifest.parts[0].tier == 0);
    CHECK(res.manifest.parts[1].tier == 1);
    CHECK(res.manifest.parts[2].compression == placed::Compression::zstd);
    CHECK(res.manifest.parts[2].frames.size() == 10);  // 20 pages / 2 pages per frame

    placed::PlacedReader r(dir + "/p.placed");
    CHECK(r.parent_digest() == split.digest());
    CHECK(r.plan().runs == split.plan().runs);
    CHECK(r.plan().extents == split.plan().extents);
    CHECK(r.plan().order == split.plan().order);
    CHECK(r.parts() == res.manifest.parts);
    CHECK(r.tiers() == res.manifest.tiers);
    for (auto& p : r.parts()) CHECK_NOTHROW(placed::check_part(p));
    CHECK(r.cost()["estimate"]["classes"]["ro"]["mechanism"] == "map");
    auto d = placed::describe_placed(r);
    CHECK(d["image_pages"] == 64);
    CHECK(d["rw_pages"] == 10);
    CHECK(d["parts"].size() == 3);

    auto m = placed::materialize(r, dir + "/out.img");
    CHECK(m.fingerprint == split.image().fingerprint);
    CHECK(slurp(dir + "/out.img") == slurp(dir + "/img"));

    // Same inputs, same bytes; the uncompressed parts are kept, not rewritten.
    auto again = placed::place(split, req, dir + "/p2.placed");
    CHECK(slurp(dir + "/p.placed") == slurp(dir + "/p2.placed"));
    CHECK(again.outcomes[0].reused);
    CHECK(again.outcomes[1].reused);

    // The split may go: the placed artifact is enough.
    ::unlink(sp.c_str());
    placed::PlacedReader r2(dir + "/p.placed");
    CHECK_NOTHROW(placed::materialize(r2, dir + "/out2.img"));
}

TEST_CASE("the manifest records only the tiers that hold a part: its bytes do not depend on the output directory") {
    // As snap-place without --tiers: the default dram and file:<output dir> are candidates,
    // every class is fixed elsewhere (here a dax directory shared by both placements).
    std::string dir = scratch_dir("unused_tiers");
    std::string sp = make_split(dir);
    for (const char* sub : {"/a", "/b", "/dax"}) ::mkdir((dir + sub).c_str(), 0755);
    SplitReader split(sp);
    auto place_into = [&](const std::string& out_dir) {
        placed::PlaceRequest req;
        req.tiers = {mk(TierKind::dram, out_dir), mk(TierKind::file, out_dir), mk(TierKind::dax, dir + "/dax")};
        req.fixed = {-1, 2, 2, 2};
        return placed::place(split, req, out_dir + "/p.placed");
    };
    auto a = place_into(dir + "/a");
    auto b = place_into(dir + "/b");
    CHECK(a.digest == b.digest);
    CHECK(slurp(dir + "/a/p.placed") == slurp(dir + "/b/p.placed"));
    placed::PlacedReader r(dir + "/a/p.placed");
    REQUIRE(r.tiers().size() == 1);
    CHECK(r.tiers()[0].kind == TierKind::dax);
    for (auto& p : r.parts()) CHECK(p.tier == 0);
    CHECK_NOTHROW(placed::materialize(r, dir + "/out.img"));
    CHECK(slurp(dir + "/out.img") == slurp(dir + "/img"));

    // A used tier keeps its place in the table order; the unused one between goes.
    placed::PlaceRequest req;
    req.tiers = {mk(TierKind::dram, dir + "/a"), mk(TierKind::file, dir + "/a"), mk(TierKind::dax, dir + "/dax")};
    req.fixed = {-1, 2, 0, 2};
    auto c = placed::place(split, req, dir + "/a/c.placed");
    REQUIRE(c.manifest.tiers.size() == 2);
    CHECK(c.manifest.tiers[0].kind == TierKind::dram);
    CHECK(c.manifest.tiers[1].kind == TierKind::dax);
    for (auto& p : c.manifest.parts) CHECK(p.tier == (p.cls == PageClass::rw ? 0u : 1u));
}

TEST_CASE("bad part files and corrupt manifests are BadInput naming the file") {
    std::string dir = scratch_dir("corrupt");
    SplitReader split(test::testdata("pagemap.split"));  // any valid split with an RO class
    placed::PlaceRequest req;
    req.tiers = {mk(TierKind::dram, dir)};
    auto res = placed::place(split, req, dir + "/p.placed");
    placed::PlacedReader r(dir + "/p.placed");

    // A part whose bytes changed.
    const std::string ro = r.part(PageClass::ro)->path;
    auto bytes = slurp(ro);
    bytes[100] ^= 1;
    spit(ro, bytes);
    try {
        placed::check_part(*r.part(PageClass::ro));
        FAIL("corrupt part accepted");
    } catch (const BadInput& e) {
        CHECK(e.file() == ro);
        CHECK(e.why().find("digest mismatch") != std::string::npos);
    }
    CHECK_THROWS_AS(placed::materialize(r, dir + "/out.img"), BadInput);
    CHECK(::access((dir + "/out.img").c_str(), F_OK) != 0);  // no partial output

    // A missing part.
    ::unlink(ro.c_str());
    try {
        placed::check_part(*r.part(PageClass::ro));
        FAIL("missing part accepted");
    } catch (const BadInput& e) {
        CHECK(e.file() == ro);
    }

    // Every single-byte flip in the manifest is refused (checksums cover every byte that matters).
    auto man = slurp(dir + "/p.placed");
    for (size_t i = 0; i < man.size(); i += 7) {
        auto bad = man;
        bad[i] ^= 0x40;
        spit(dir + "/bad.placed", bad);
        bool refused = false;
        try {
            placed::PlacedReader b(dir + "/bad.placed");
            // Flips in padding between chunks are not covered by a checksum; anything parsed must equal the original.
            refused = !(b.parts() == r.parts() && b.plan().runs == r.plan().runs);
        } catch (const BadInput&) {
            refused = true;
        }
        if (!refused) {
            // Only padding bytes may be flipped without notice.
            CHECK(man[i] == 0);
        }
    }
    // Truncated.
    man.resize(man.size() - 9);
    spit(dir + "/bad.placed", man);
    CHECK_THROWS_AS(placed::PlacedReader(dir + "/bad.placed"), BadInput);
}

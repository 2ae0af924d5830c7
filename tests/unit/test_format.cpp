// SPDX-License-Identifier: Apache-2.0
// The artifact container, loading sets and splits: known bytes, round trips, corrupt inputs.
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/format/container.hpp"
#include "common/hash.hpp"
#include "common/loadset.hpp"
#include "common/split.hpp"
#include "common/verified.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace snap;

namespace {

std::string temp_path(const std::string& tag) {
    static int n = 0;
    return "/tmp/snapkit-unit-" + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" + tag;
}

std::vector<char> slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

void spit(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& tag) : path(temp_path(tag)) {}
    ~TempFile() { std::remove(path.c_str()); }
};

LoadingSet sample_loadset(uint64_t pages = 64) {
    LoadingSet ls;
    ls.image = {pages * 4096, 4096, 0x1234567890abcdefULL};
    ls.method = "pagemap";
    ls.knows_writes = true;
    ls.touches = {{5, 10, 0, kAccessRead}, {6, 20, 0, kAccessWrite | kAccessRead}, {1, 30, 1, kAccessWrite}};
    ls.meta["limitations"] = {"test"};
    return ls;
}

// Expect BadInput whose message contains `needle`.
template <class F>
void expect_bad(F&& f, const std::string& needle) {
    try {
        f();
        FAIL("expected BadInput containing: " << needle);
    } catch (const BadInput& e) {
        CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
}

}  // namespace

TEST_CASE("xxh3 hex form matches xxhsum -H3 printing") {
    CHECK(hash::to_hex(hash::xxh3("", 0)) == "2d06800538d394c2");  // XXH3-64 of the empty input
    uint64_t v = 0;
    CHECK(hash::from_hex("2d06800538d394c2", v));
    CHECK(v == 0x2d06800538d394c2ULL);
    CHECK_FALSE(hash::from_hex("xyz", v));
}

TEST_CASE("header encodes to fixed offsets and decodes back") {
    format::Header h;
    h.kind = format::Kind::split;
    h.page_size = 4096;
    h.chunk_count = 3;
    h.parent_digest = 0x1122334455667788ULL;
    h.file_size = 12345;
    auto b = format::encode_header(h);
    CHECK(std::memcmp(b.data(), "SNAPKIT\0", 8) == 0);
    CHECK(format::get_u32(&b[8]) == 2);
    CHECK(format::get_u16(&b[12]) == 1);
    CHECK(format::get_u32(&b[24]) == 4096);
    CHECK(format::get_u64(&b[32]) == 0x1122334455667788ULL);
    CHECK(format::get_u64(&b[56]) == hash::xxh3(b.data(), 56));
    auto d = format::decode_header(b, "x");
    CHECK(d.kind == format::Kind::split);
    CHECK(d.chunk_count == 3);
    CHECK(d.file_size == 12345);

    auto bad = b;
    bad[3] = std::byte{'X'};
    expect_bad([&] { format::decode_header(bad, "x"); }, "bad magic");
    bad = b;
    bad[33] ^= std::byte{1};
    expect_bad([&] { format::decode_header(bad, "x"); }, "header checksum mismatch");
    h.version_major = 2;
    auto v2 = format::encode_header(h);
    expect_bad([&] { format::decode_header(v2, "x"); }, "not supported");
}

TEST_CASE("loading set round trip, and corrupt files are refused with a reason") {
    TempFile f("ls");
    LoadingSet ls = sample_loadset();
    uint64_t d1 = write_loadset(ls, f.path);
    uint64_t d2 = 0;
    LoadingSet back = read_loadset(f.path, &d2);
    CHECK(d1 == d2);
    CHECK(back.touches == ls.touches);
    CHECK(back.image == ls.image);
    CHECK(back.method == "pagemap");
    CHECK(back.knows_writes);
    CHECK_FALSE(back.has_time);
    CHECK(back.read_pages() == 1);
    CHECK(back.written_pages() == 2);

    // Same input, same bytes.
    TempFile g("ls2");
    write_loadset(ls, g.path);
    CHECK(slurp(f.path) == slurp(g.path));

    auto bytes = slurp(f.path);
    SUBCASE("truncated") {
        bytes.resize(bytes.size() - 5);
        spit(g.path, bytes);
        expect_bad([&] { read_loadset(g.path); }, "truncated");
    }
    SUBCASE("flipped data byte") {
        bytes[bytes.size() - 40] ^= 0x40;
        spit(g.path, bytes);
        expect_bad([&] { read_loadset(g.path); }, "checksum mismatch");
    }
    SUBCASE("flipped table byte") {
        bytes[70] ^= 0x01;
        spit(g.path, bytes);
        expect_bad([&] { read_loadset(g.path); }, "checksum mismatch");
    }
    SUBCASE("empty file") {
        spit(g.path, {});
        expect_bad([&] { read_loadset(g.path); }, "truncated");
    }
    SUBCASE("wrong kind") {
        bytes[8] = 2;  // claims to be a split; header checksum now wrong too
        spit(g.path, bytes);
        expect_bad([&] { read_loadset(g.path); }, g.path);
    }
}

TEST_CASE("a loading set naming a page past the image end is refused") {
    TempFile f("ls");
    LoadingSet ls = sample_loadset(8);
    ls.touches.push_back({8, 40, 2, kAccessRead});
    write_loadset(ls, f.path);
    expect_bad([&] { read_loadset(f.path); }, "past the image end");
}

TEST_CASE("merge: union, intersect, at least K") {
    LoadingSet a, b, c;
    for (auto* s : {&a, &b, &c}) {
        s->image = {16 * 4096, 4096, 7};
        s->method = "pagemap";
        s->knows_writes = true;
    }
    a.touches = {{1, 0, 0, kAccessRead}, {2, 0, 1, kAccessRead}, {3, 0, 2, kAccessWrite}};
    b.touches = {{2, 0, 0, kAccessWrite}, {3, 0, 0, kAccessRead}, {4, 0, 1, kAccessRead}};
    c.touches = {{3, 0, 0, kAccessRead}, {9, 0, 0, kAccessRead}};
    auto u = merge_loadsets({a, b, c}, parse_merge_spec("union"));
    CHECK(u.touches.size() == 5);
    auto i = merge_loadsets({a, b, c}, parse_merge_spec("intersect"));
    REQUIRE(i.touches.size() == 1);
    CHECK(i.touches[0].page == 3);
    CHECK(i.touches[0].access == (kAccessRead | kAccessWrite));
    auto k2 = merge_loadsets({a, b, c}, parse_merge_spec("atleast:2"));
    REQUIRE(k2.touches.size() == 2);
    // Page 3 has rank 0 (in b and c) and comes before page 2 (rank 0 in b too; ties by page).
    CHECK(k2.touches[0].page == 2);
    CHECK(k2.touches[0].access == (kAccessRead | kAccessWrite));
    CHECK(k2.touches[1].page == 3);
    CHECK_THROWS_AS(parse_merge_spec("atleast:0"), UsageError);
    CHECK_THROWS_AS(parse_merge_spec("most"), UsageError);
    LoadingSet other = a;
    other.image.fingerprint = 8;
    CHECK_THROWS_AS(merge_loadsets({a, other}, parse_merge_spec("union")), UsageError);
}

TEST_CASE("classification follows DESIGN.md: zero wins, then written, touched, cold") {
    // pages: 0 zero untouched, 1 zero written, 2 data read, 3 data written, 4 data cold,
    //        5 data read, 6 data read (adjacent RO run 5-6), 7 data cold
    ImageIdentity id{8 * 4096, 4096, 1};
    std::vector<bool> zero = {true, true, false, false, false, false, false, false};
    LoadingSet ls;
    ls.image = id;
    ls.knows_writes = true;
    ls.touches = {{6, 0, 0, kAccessRead}, {1, 0, 1, kAccessWrite}, {3, 0, 2, kAccessWrite},
                  {2, 0, 3, kAccessRead}, {5, 0, 4, kAccessRead}};
    auto plan = classify_pages(id, zero, ls, {});
    CHECK(plan.pages_per_class[0] == 2);
    CHECK(plan.pages_per_class[1] == 3);
    CHECK(plan.pages_per_class[2] == 1);
    CHECK(plan.pages_per_class[3] == 2);
    std::vector<ClassRun> expect_runs = {{0, 2, PageClass::zero}, {2, 1, PageClass::ro}, {3, 1, PageClass::rw},
                                         {4, 1, PageClass::cold}, {5, 2, PageClass::ro}, {7, 1, PageClass::cold}};
    CHECK(plan.runs == expect_runs);
    // RW first, then RO in first-touch order (run 5-6 was touched first, via page 6), then COLD by address.
    std::vector<Extent> expect_ext = {{3, 1, PageClass::rw, 0}, {5, 2, PageClass::ro, 0}, {2, 1, PageClass::ro, 2},
                                      {4, 1, PageClass::cold, 0}, {7, 1, PageClass::cold, 1}};
    CHECK(plan.extents == expect_ext);
    CHECK(plan.order.size() == 5);
    CHECK(plan.order[0].page == 6);

    SUBCASE("without R/W information touched pages are RO unless told otherwise") {
        ls.knows_writes = false;
        auto p = classify_pages(id, zero, ls, {});
        CHECK(p.pages_per_class[2] == 0);
        CHECK(p.pages_per_class[1] == 4);
        auto q = classify_pages(id, zero, ls, {true});
        CHECK(q.pages_per_class[2] == 4);
        CHECK(q.pages_per_class[1] == 0);
    }
}

TEST_CASE("the split's bytes do not depend on the thread count") {
    // Several scan tasks (16 MiB each) and a last, partial bitmap word: 4100 + 37 pages.
    const uint64_t pages = 3 * 4096 + 8 + 37;
    TempFile img("img-threads");
    std::vector<char> data(pages * 4096, 0);
    std::mt19937_64 rng(7);
    for (uint64_t p = 0; p < pages;) {
        const uint64_t run = 1 + rng() % 40;
        const bool zero = rng() % 2;
        for (uint64_t i = 0; i < run && p < pages; ++i, ++p)
            if (!zero) data[p * 4096 + rng() % 4096] = static_cast<char>(1 + rng() % 255);
    }
    spit(img.path, data);
    Image probe(img.path);
    LoadingSet ls;
    ls.image = probe.identity();
    ls.knows_writes = true;
    for (uint64_t p = 0; p < pages; p += 5) ls.touches.push_back({p, 0, static_cast<uint32_t>(rng() % 1000), p % 2 ? kAccessWrite : kAccessRead});
    ls.normalize();
    std::vector<char> first;
    for (unsigned threads : {1u, 2u, 3u, 8u}) {
        CAPTURE(threads);
        Image image(img.path);  // a fresh one: hashed in the pass each time
        SplitOptions opt;
        opt.threads = threads;
        auto plan = plan_split(image, ls, opt);
        CHECK(image.fingerprint() == ls.image.fingerprint);
        TempFile out("split-threads");
        write_split(image, plan, out.path, 5, {}, threads);
        auto bytes = slurp(out.path);
        if (first.empty()) first = bytes;
        else CHECK(bytes == first);
        SplitReader(out.path).verify_data();
    }
}

TEST_CASE("progress lines say done, total, rate and time left") {
    CHECK(cli::Progress::format_line("hashing x", uint64_t{1} << 30, uint64_t{4} << 30, "bytes", 2.0) ==
          "hashing x  25% (1.0 GiB/4.0 GiB), 512 MiB/s, 6s left");
    CHECK(cli::Progress::format_line("classifying", 1000, 4000, "pages", 1.0) ==
          "classifying  25% (1000/4000 pages), 1000 pages/s, 3s left");
    CHECK(cli::Progress::format_line("scanning", 100, 0, "pages", 1.0) == "scanning 100 pages, 100 pages/s");
    CHECK(cli::Progress::format_line("hashing", uint64_t{1} << 20, uint64_t{1} << 40, "bytes", 1.0).find("left") != std::string::npos);
}

TEST_CASE("a fingerprint is remembered for the image's stamp only") {
    const std::string dir = temp_path("cache");
    setenv("SNAPKIT_CACHE", dir.c_str(), 1);
    if (verified::cache_dir().empty() || verified::cache_dir().rfind(dir, 0) != 0) return;  // found once per process: elsewhere
    TempFile f("fp-image");
    spit(f.path, std::vector<char>(8192, 'a'));
    auto st = file::stamp_of(f.path);
    REQUIRE(st);
    // Hashing that started before the file's last change (or in its clock tick) is not remembered.
    CHECK_FALSE(verified::remember_content_digest(f.path, *st, st->ctime, 42));
    CHECK_FALSE(verified::content_digest(*st));
    timespec later = st->ctime;
    later.tv_sec += 1;
    CHECK(verified::remember_content_digest(f.path, *st, later, 42));
    CHECK(verified::content_digest(*st) == std::optional<uint64_t>(42));
    CHECK(verified::known(f.path, 42));
    verified::remember(f.path, *st, later, 42);  // a plain verdict with the same digest keeps the content entry
    CHECK(verified::content_digest(*st) == std::optional<uint64_t>(42));
    auto other = *st;
    other.ctime.tv_nsec ^= 1;
    CHECK_FALSE(verified::content_digest(other));
    // A stamp that is no longer the file's is not remembered.
    CHECK_FALSE(verified::remember_content_digest(f.path, other, later, 43));
    // A part's verdict follows the same guard: not for a hash begun in the file's clock tick,
    // not for a stamp that is no longer the file's.
    verified::remember(f.path, *st, st->ctime, 44);
    CHECK_FALSE(verified::known(f.path, 44));
    verified::remember(f.path, other, later, 44);
    CHECK_FALSE(verified::known(f.path, 44));
    verified::remember(f.path, *st, later, 44);  // another digest: a plain verdict, no content digest
    CHECK_FALSE(verified::content_digest(*st));
    CHECK(verified::known(f.path, 44));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

TEST_CASE("split artifact round trip reproduces every page, and readers catch corruption") {
    const uint64_t pages = 256;
    TempFile img("img"), out("split"), out2("split2");
    std::vector<char> data(pages * 4096, 0);
    std::mt19937_64 rng(42);
    for (uint64_t p = 0; p < pages; ++p)
        if (rng() % 3)  // two thirds of the pages carry data
            for (int i = 0; i < 4096; i += 8) data[p * 4096 + i] = static_cast<char>(rng());
    spit(img.path, data);
    Image image(img.path);
    LoadingSet ls;
    ls.image = image.identity();
    ls.knows_writes = true;
    for (uint64_t p = 0; p < pages; p += 3) ls.touches.push_back({p, 0, static_cast<uint32_t>(pages - p), p % 2 ? kAccessWrite : kAccessRead});
    ls.normalize();
    auto plan = plan_split(image, ls, {});
    write_split(image, plan, out.path, 99);
    write_split(image, plan, out2.path, 99);
    CHECK(slurp(out.path) == slurp(out2.path));  // deterministic

    SplitReader r(out.path);
    r.verify_data();
    CHECK(r.parent_digest() == 99);
    CHECK(r.plan().runs == plan.runs);
    CHECK(r.plan().extents == plan.extents);
    CHECK(r.plan().order == plan.order);
    std::vector<char> rebuilt(pages * 4096, 0);
    for (auto& e : r.plan().extents) {
        auto d = r.extent_data(e);
        std::memcpy(rebuilt.data() + e.image_page * 4096, d.data(), d.size());
        CHECK(r.extent_file_offset(e) % 4096 == 0);
    }
    CHECK(rebuilt == data);

    auto bytes = slurp(out.path);
    SUBCASE("page data corruption is found by verify") {
        auto& ro = *r.artifact().find(format::chunk_type("PGRO"));
        bytes[ro.offset + 100] ^= 1;
        spit(out2.path, bytes);
        SplitReader bad(out2.path);  // metadata still fine
        expect_bad([&] { bad.verify_data(); }, "chunk PGRO: checksum mismatch");
    }
    SUBCASE("metadata corruption is found on open") {
        auto& cl = *r.artifact().find(format::chunk_type("CLAS"));
        bytes[cl.offset + 9] ^= 1;
        spit(out2.path, bytes);
        expect_bad([&] { SplitReader bad(out2.path); }, "chunk CLAS: checksum mismatch");
    }
}

TEST_CASE("image size must be a whole number of pages") {
    TempFile img("img");
    spit(img.path, std::vector<char>(5000, 1));
    expect_bad([&] { Image i(img.path); }, "not a multiple of the page size");
    spit(img.path, {});
    expect_bad([&] { Image i(img.path); }, "image is empty");
}

TEST_CASE("zero page detection") {
    std::vector<std::byte> page(4096);
    CHECK(is_zero_page(page.data(), 4096));
    page[4095] = std::byte{1};
    CHECK_FALSE(is_zero_page(page.data(), 4096));
    page[4095] = std::byte{0};
    page[17] = std::byte{1};
    CHECK_FALSE(is_zero_page(page.data(), 4096));
}

// SPDX-License-Identifier: Apache-2.0
// snap::uffd: the Firecracker handshake parser, region lookup and granule clamping (pure),
// page-source stretches (bytes), and the FaultServer on this process's own memory (probes
// userfaultfd first and skips with a message where it is unavailable).
#include "common/uffd/firecracker.hpp"
#include "common/uffd/server.hpp"
#include "common/uffd/source.hpp"
#include "common/placed.hpp"
#include "common/restore/source.hpp"
#include "common/split.hpp"
#include "common/tier.hpp"

#include <doctest/doctest.h>

#include <sys/mman.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <chrono>
#include <thread>
#include <vector>

using namespace snap::uffd;

TEST_CASE("firecracker message: current and legacy field spellings") {
    auto now = parse_firecracker_regions(
        R"([{"base_host_virt_addr":140000000000000,"size":33554432,"offset":0,"page_size":4096},)"
        R"({"base_host_virt_addr":140000035651584,"size":16777216,"offset":33554432,"page_size":4096}])");
    REQUIRE(now.size() == 2);
    CHECK(now[0] == Region{140000000000000ull, 33554432, 0, 4096});
    CHECK(now[1].offset == 33554432);

    auto old = parse_firecracker_regions(R"([{"base_host_virt_addr":4194304,"size":2097152,"offset":0,"page_size_kib":4096}])");
    CHECK(old[0].page_size == 4096);  // the legacy field carried bytes
    auto kib = parse_firecracker_regions(R"([{"base_host_virt_addr":4194304,"size":4194304,"offset":0,"page_size_kib":2048}])");
    CHECK(kib[0].page_size == 2u << 20);  // a value below 4096 can only be KiB
    auto both = parse_firecracker_regions(
        R"([{"base_host_virt_addr":4194304,"size":4194304,"offset":0,"page_size":2097152,"page_size_kib":2097152,"extra":1}])");
    CHECK(both[0].page_size == 2u << 20);

    std::vector<Region> rs{{0x7f0000000000, 32 << 20, 0, 4096}, {0x7f0002200000, 16 << 20, 32 << 20, 4096}};
    CHECK(parse_firecracker_regions(firecracker_regions_json(rs)) == rs);
    CHECK(parse_firecracker_regions(firecracker_regions_json(rs, true)) == rs);
}

TEST_CASE("firecracker message: bad input is a typed error") {
    const char* bad[] = {
        "",
        "[{",
        "{}",
        "[]",
        "[1]",
        R"([{"size":4096,"offset":0,"page_size":4096}])",
        R"([{"base_host_virt_addr":4096,"size":4096,"offset":0}])",
        R"([{"base_host_virt_addr":-4096,"size":4096,"offset":0,"page_size":4096}])",
        R"([{"base_host_virt_addr":"4096","size":4096,"offset":0,"page_size":4096}])",
        R"([{"base_host_virt_addr":4096,"size":4096,"offset":0,"page_size":3000}])",
        R"([{"base_host_virt_addr":4097,"size":4096,"offset":0,"page_size":4096}])",
        R"([{"base_host_virt_addr":4096,"size":0,"offset":0,"page_size":4096}])",
        R"([{"base_host_virt_addr":4096,"size":8192,"offset":0,"page_size":4096},)"
        R"({"base_host_virt_addr":8192,"size":4096,"offset":8192,"page_size":4096}])",
    };
    for (const char* text : bad) {
        CAPTURE(text);
        CHECK_THROWS_AS(parse_firecracker_regions(text), ProtocolError);
    }
}

TEST_CASE("region lookup, granules clamped at region ends, image offsets to addresses") {
    RegionMap map({{0x200000, 0x30000, 0x30000, 4096}, {0x100000, 0x30000, 0, 4096}});  // unsorted on input
    CHECK(map.regions()[0].base == 0x100000);
    CHECK(map.find(0x100000) == 0);
    CHECK(map.find(0x12ffff) == 0);
    CHECK(map.find(0x130000) == -1);  // the hole
    CHECK(map.find(0x200000) == 1);
    CHECK(map.find(0x22ffff) == 1);
    CHECK(map.find(0x230000) == -1);
    CHECK(map.find(0xfffff) == -1);

    CHECK(map.granule_for(0x105123, 0x10000) == AddrRange{0x100000, 0x10000});
    CHECK(map.granule_for(0x12f000, 0x10000) == AddrRange{0x120000, 0x10000});
    CHECK(map.granule_for(0x12f000, 0x20000) == AddrRange{0x120000, 0x10000});  // clamped at the end
    CHECK(map.granule_for(0x12f000, 0x100000) == AddrRange{0x100000, 0x30000});
    CHECK(map.granule_for(0x12f000, 0) == AddrRange{0x12f000, 0x1000});         // at least a page
    CHECK(map.granule_for(0x12f000, 100) == AddrRange{0x12f000, 0x1000});
    CHECK(map.granule_for(0x12f000, 0x1800) == AddrRange{0x12e000, 0x2000});    // rounded up to pages
    CHECK(map.granule_for(0x130000, 0x10000) == AddrRange{});

    auto a = map.addresses_of(0x2f000, 0x3000);  // straddles both regions
    REQUIRE(a.size() == 2);
    CHECK(a[0] == AddrRange{0x12f000, 0x1000});
    CHECK(a[1] == AddrRange{0x200000, 0x2000});
    CHECK(map.addresses_of(0x60000, 0x1000).empty());

    CHECK_THROWS_AS(RegionMap({{0x100000, 0x2000, 0, 4096}, {0x101000, 0x2000, 0x2000, 4096}}), snap::Error);
    CHECK_THROWS_AS(RegionMap({{0x100000, 0x1000, 0, 2u << 20}}), snap::Error);
}

TEST_CASE("page source stretches: data and zero runs, zero beyond the image") {
    std::vector<std::byte> img(8 * 4096, std::byte{0});
    img[2 * 4096 + 7] = std::byte{1};  // page 2
    img[3 * 4096] = std::byte{1};      // page 3
    img[7 * 4096 + 4095] = std::byte{1};
    std::span<const std::byte> s(img);
    Piece p = stretch_of(s, 0, 8 * 4096, 4096, true);
    CHECK(p.zero());
    CHECK(p.bytes == 2 * 4096);
    p = stretch_of(s, 2 * 4096, 8 * 4096, 4096, true);
    CHECK(p.data == img.data() + 2 * 4096);
    CHECK(p.bytes == 2 * 4096);
    p = stretch_of(s, 4 * 4096, 2 * 4096, 4096, true);  // capped by max
    CHECK(p.zero());
    CHECK(p.bytes == 2 * 4096);
    p = stretch_of(s, 7 * 4096, 4 * 4096, 4096, true);
    CHECK(!p.zero());
    CHECK(p.bytes == 4096);
    p = stretch_of(s, 8 * 4096, 4 * 4096, 4096, true);
    CHECK(p.zero());
    CHECK(p.bytes == 4 * 4096);
    p = stretch_of(s, 0, 8 * 4096, 4096, false);  // no detection: everything is data
    CHECK(!p.zero());
    CHECK(p.bytes == 8 * 4096);
}

TEST_CASE("split source: every page of a split reads back as the image") {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("snap-uffd-" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::vector<std::byte> img(64 * 4096, std::byte{0});
    for (size_t i = 0; i < 64; ++i)
        if (i % 4 != 1 && i < 60)
            for (size_t k = 0; k < 4096; k += 64) img[i * 4096 + k] = static_cast<std::byte>(i + 1);
    {
        FILE* f = std::fopen((dir / "img").c_str(), "wb");
        REQUIRE(f);
        std::fwrite(img.data(), 1, img.size(), f);
        std::fclose(f);
    }
    snap::Image image((dir / "img").string());
    snap::LoadingSet ls;
    ls.image = image.identity();
    ls.method = "uffd";
    ls.knows_writes = true;
    for (uint32_t i = 0; i < 20; ++i) ls.touches.push_back({static_cast<uint64_t>(40 - 2 * i), 0, i, static_cast<uint8_t>(i % 3 ? snap::kAccessRead : snap::kAccessWrite)});
    auto plan = snap::plan_split(image, ls, {});
    snap::write_split(image, plan, (dir / "split").string(), 0);
    snap::SplitReader reader((dir / "split").string());
    SplitSource src(reader);
    CHECK(src.size_bytes() == img.size());
    for (uint64_t max : {4096ull, 3 * 4096ull, 64 * 4096ull}) {
        for (uint64_t off = 0; off < img.size();) {
            Piece p = src.read(off, max, nullptr);
            REQUIRE(p.bytes > 0);
            REQUIRE(p.bytes <= max);
            uint64_t n = std::min<uint64_t>(p.bytes, img.size() - off);
            if (p.zero()) {
                for (uint64_t k = 0; k < n; ++k) REQUIRE(img[off + k] == std::byte{0});
            } else {
                REQUIRE(std::memcmp(p.data, img.data() + off, n) == 0);
            }
            off += p.bytes;
        }
    }
    CHECK(src.read(img.size(), 4096, nullptr).zero());
    fs::remove_all(dir);
}

namespace {

bool uffd_usable() {
    try {
        return (Userfaultfd::available_features() & UFFD_FEATURE_EVENT_REMOVE) != 0;
    } catch (const snap::Error& e) {
        MESSAGE("skipped: userfaultfd unavailable: " << e.what());
        return false;
    }
}

std::vector<std::byte> test_image(size_t pages) {
    std::vector<std::byte> img(pages * 4096);
    for (size_t i = 0; i < pages; ++i) {
        if (i % 5 == 3) continue;  // zero pages
        for (size_t k = 0; k < 4096; k += 8) img[i * 4096 + k] = static_cast<std::byte>((i * 7 + k / 8) | 1);
    }
    return img;
}

// Guest memory in this process: two regions with a hole, served by a thread.
struct Harness {
    std::vector<std::byte> img;
    MemorySource src;
    std::byte* mem = nullptr;
    size_t span = 0;
    std::vector<Region> regions;
    Harness(size_t pages_a, size_t pages_b) : img(test_image(pages_a + pages_b)), src(img) {
        span = (pages_a + pages_b + 16) * 4096;
        mem = static_cast<std::byte*>(mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        REQUIRE(mem != MAP_FAILED);
        munmap(mem + pages_a * 4096, 16 * 4096);  // the hole
        regions = {{reinterpret_cast<uint64_t>(mem), pages_a * 4096, 0, 4096},
                   {reinterpret_cast<uint64_t>(mem) + (pages_a + 16) * 4096, pages_b * 4096, pages_a * 4096, 4096}};
    }
    ~Harness() {
        munmap(mem, regions[0].size_bytes);
        munmap(reinterpret_cast<void*>(regions[1].base), regions[1].size_bytes);
    }
    std::byte* at(const Region& r, uint64_t page) { return reinterpret_cast<std::byte*>(r.base) + page * 4096; }
    bool matches(const Region& r, uint64_t page) { return std::memcmp(at(r, page), img.data() + r.offset + page * 4096, 4096) == 0; }
};

struct Serving {
    std::atomic<bool> stop{false};
    std::thread thread;
    explicit Serving(FaultServer& s) : thread([&] { s.serve({}, &stop); }) {}
    ~Serving() {
        stop = true;
        thread.join();
    }
};

bool all_zero(const std::byte* p) {
    for (size_t k = 0; k < 4096; ++k)
        if (p[k] != std::byte{0}) return false;
    return true;
}

}  // namespace

TEST_CASE("fault server: granules, zero pages, two regions, balloon REMOVE reads back zero") {
    if (!uffd_usable()) return;
    Harness h(64, 32);
    ServerOptions opt;
    opt.granule_bytes = 16 * 4096;
    opt.max_granule_bytes = 0;  // a fixed granule (readahead: the next case)
    FaultServer server(Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE), h.regions, h.src, opt);
    server.register_regions();
    {
        Serving serving(server);
        for (const Region& r : h.regions)
            for (uint64_t p = 0; p < r.size_bytes / 4096; ++p) REQUIRE(h.matches(r, p));
        // Balloon: the range must read back as zeros, not the image.
        REQUIRE(madvise(h.at(h.regions[0], 8), 8 * 4096, MADV_DONTNEED) == 0);
        for (uint64_t p = 8; p < 16; ++p) CHECK(all_zero(h.at(h.regions[0], p)));
        CHECK(h.matches(h.regions[0], 7));
        CHECK(h.matches(h.regions[0], 16));
    }
    const ServerStats& s = server.stats();
    CHECK(s.faults == 96 / 16 + 1);  // one per granule, then one for the ballooned range
    CHECK(s.remove_events == 1);
    CHECK(s.removed_bytes == 8 * 4096);
    CHECK(s.pages_copied + s.pages_zeroed == 96 + 8);
}

TEST_CASE("fault server: a sequential scan doubles the range each fault resolves (readahead)") {
    if (!uffd_usable()) return;
    Harness h(128, 32);
    ServerOptions opt;
    opt.granule_bytes = 4 * 4096;
    opt.max_granule_bytes = 32 * 4096;
    FaultServer server(Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE), h.regions, h.src, opt);
    server.register_regions();
    {
        Serving serving(server);
        // Faults at pages 0 (4 pages), 4 (8), 12 (16), 28 (32), 60 (32, the maximum): through page 91.
        for (uint64_t p = 0; p < 64; ++p) REQUIRE(h.matches(h.regions[0], p));
        CHECK(server.stats().faults == 5);
        // Not just past the last range (92..123): one aligned granule again, 124..127.
        REQUIRE(h.matches(h.regions[0], 127));
        for (uint64_t p = 124; p < 128; ++p) CHECK(h.matches(h.regions[0], p));
        CHECK(h.matches(h.regions[0], 91));
    }
    const ServerStats& s = server.stats();
    CHECK(s.faults == 6);
    CHECK(s.pages_copied + s.pages_zeroed == 92 + 4);
}

TEST_CASE("fault server: polling for the next fault (spin_us) serves every fault and still times out when idle") {
    if (!uffd_usable()) return;
    Harness h(64, 32);
    ServerOptions opt;
    opt.granule_bytes = 4096;
    opt.max_granule_bytes = 0;
    opt.spin_us = 20000;  // 20 ms: far longer than the gaps between the toucher's faults
    // With idle polling (the default): idle cores poll while the server does, never after.
    FaultServer server(Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE), h.regions, h.src, opt);
    server.register_regions();
    const int64_t limit_before = snap::sys::IdlePolling::current_limit_us();
    int result = 0;
    // No stop flag: the idle timeout ends it (long enough that a loaded machine's pause
    // between two touches cannot end it early and leave a touch waiting for ever).
    std::thread serving([&] { result = server.serve({}, nullptr, 1000); });
    bool right = true;
    for (const Region& r : h.regions)
        for (uint64_t p = 0; p < r.size_bytes / 4096; ++p) {
            // A pause between touches, far shorter than the spin: the server has run out of
            // events and is polling when the next fault comes.
            if (p % 8 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            right = right && h.matches(r, p);
        }
    serving.join();  // returns once 1 s passes with no fault, after the last poll's spin
    CHECK(right);
    CHECK(result == -2);
    CHECK(server.stats().faults == 96);
    CHECK(server.stats().spin_batches > 0);  // faults after the first found while polling
    CHECK(server.stats().idle_poll == (::access("/dev/cpu_dma_latency", W_OK) == 0 ? "on" : "unavailable"));
    if (server.stats().idle_poll == "on") {
        CHECK(server.stats().idle_poll_windows > 0);
        if (limit_before > 0) CHECK(snap::sys::IdlePolling::current_limit_us() == limit_before);  // released when serve() returned
    }
}

TEST_CASE("fault server: a long eager run is shared out in 64-page batches, every page right") {
    if (!uffd_usable()) return;
    Harness h(1024, 64);
    FaultServer server(Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE), h.regions, h.src, {});
    server.register_regions();
    std::vector<PageRange> ranges{{0, 700}, {900, 150}, {1060, 20}};  // the second straddles the regions
    CHECK(server.install(ranges) == 870);
    Serving serving(server);
    for (uint64_t p = 0; p < 700; ++p) CHECK(h.matches(h.regions[0], p));
    for (uint64_t p = 900; p < 1024; ++p) CHECK(h.matches(h.regions[0], p));
    for (uint64_t p = 0; p < 26; ++p) CHECK(h.matches(h.regions[1], p));
    for (uint64_t p = 36; p < 56; ++p) CHECK(h.matches(h.regions[1], p));
    CHECK(server.stats().faults == 0);
    CHECK(server.stats().eager_pages_copied + server.stats().eager_pages_zeroed == 870);
    CHECK(server.stats().eexist == 0);
}

TEST_CASE("fault server: eager install, then no faults") {
    if (!uffd_usable()) return;
    Harness h(40, 24);
    FaultServer server(Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE), h.regions, h.src, {});
    server.register_regions();
    std::vector<PageRange> ranges{{0, 10}, {35, 10}};  // the second straddles the regions
    CHECK(server.install(ranges) == 20);
    CHECK(server.install(ranges) == 0);  // already there
    Serving serving(server);
    for (uint64_t p = 0; p < 10; ++p) CHECK(h.matches(h.regions[0], p));
    for (uint64_t p = 35; p < 40; ++p) CHECK(h.matches(h.regions[0], p));
    for (uint64_t p = 0; p < 5; ++p) CHECK(h.matches(h.regions[1], p));
    CHECK(server.stats().faults == 0);
    CHECK(server.stats().eager_pages_copied + server.stats().eager_pages_zeroed == 20);
}

TEST_CASE("fault server: recording first touches with write-protect") {
    if (!uffd_usable()) return;
    Harness h(16, 16);
    ServerOptions opt;
    opt.record = true;
    auto uffd = Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_PAGEFAULT_FLAG_WP);
    bool wp = uffd.has(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
    FaultServer server(std::move(uffd), h.regions, h.src, opt);
    server.register_regions();
    {
        Serving serving(server);
        (void)*reinterpret_cast<volatile std::byte*>(h.at(h.regions[1], 2));  // read
        *reinterpret_cast<volatile std::byte*>(h.at(h.regions[0], 5)) = std::byte{9};  // write first
        (void)*reinterpret_cast<volatile std::byte*>(h.at(h.regions[0], 3));  // zero page, read
        *reinterpret_cast<volatile std::byte*>(h.at(h.regions[1], 2)) = std::byte{9};  // write after read
        *reinterpret_cast<volatile std::byte*>(h.at(h.regions[0], 3) + 10) = std::byte{9};  // zero page, write after read
        CHECK(h.matches(h.regions[0], 4) == true);  // read, after the others
    }
    auto ls = server.loading_set({32 * 4096, 4096, 0});
    CHECK(ls.method == "uffd");
    CHECK(ls.has_time);
    REQUIRE(ls.touches.size() == 4);
    CHECK(ls.touches[0].page == 18);
    CHECK(ls.touches[1].page == 5);
    CHECK(ls.touches[2].page == 3);
    CHECK(ls.touches[3].page == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(ls.touches[i].rank == i);
    CHECK(ls.touches[1].access == (snap::kAccessRead | snap::kAccessWrite));
    CHECK(ls.touches[3].access == snap::kAccessRead);
    if (wp) {
        CHECK(ls.knows_writes);
        CHECK(ls.touches[0].access == (snap::kAccessRead | snap::kAccessWrite));
        CHECK(ls.touches[2].access == (snap::kAccessRead | snap::kAccessWrite));
        CHECK(server.stats().wp_faults == 2);
    }
    CHECK(server.stats().faults >= 4);
}

TEST_CASE("REAP's working-set install: parts read window by window, every touched page in before the guest, none faulted") {
    if (!uffd_usable()) return;
    namespace fs = std::filesystem;
    // Uncompressed parts; zstd parts of 2-page frames (windows cut between frames) and of
    // 4-page frames (a frame larger than the asked-for window: the window grows to hold one).
    for (uint32_t frame_pages : {0u, 2u, 4u}) {
        CAPTURE(frame_pages);
        const fs::path dir = fs::temp_directory_path() / ("snapkit-unit-reap-" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir / "rw");
        fs::create_directories(dir / "ro");
        fs::create_directories(dir / "cold");
        const size_t pages = 96;
        const std::vector<std::byte> img = test_image(pages);  // every 5th page (3, 8, …) is zero
        {
            FILE* f = std::fopen((dir / "img").c_str(), "wb");
            REQUIRE(f);
            REQUIRE(std::fwrite(img.data(), 1, img.size(), f) == img.size());
            std::fclose(f);
        }
        snap::Image image((dir / "img").string());
        snap::LoadingSet ls;
        ls.image = image.identity();
        ls.method = "unit";
        ls.knows_writes = true;
        uint32_t rank = 0;
        auto touch = [&](uint64_t from, uint64_t to, uint8_t access) {
            for (uint64_t p = from; p < to; ++p) ls.touches.push_back({p, 0, rank++, access});
        };
        touch(70, 80, snap::kAccessRead | snap::kAccessWrite);  // first-touch order is not address order
        touch(3, 13, snap::kAccessRead);                         // zero pages among them
        touch(40, 45, snap::kAccessWrite);
        touch(50, 61, snap::kAccessRead);
        touch(90, 92, snap::kAccessRead | snap::kAccessWrite);
        ls.normalize();
        auto split_plan = snap::plan_split(image, ls, {});
        snap::write_split(image, split_plan, (dir / "s.split").string(), 0);
        snap::SplitReader split((dir / "s.split").string());
        snap::placed::PlaceRequest req;
        for (const char* t : {"rw", "ro", "cold"}) {
            snap::tier::TierSpec spec;
            spec.kind = snap::tier::TierKind::file;
            spec.location = (dir / t).string();
            spec.budget_bytes = snap::tier::kUnlimited;
            req.tiers.push_back(spec);
        }
        req.fixed[static_cast<int>(snap::PageClass::rw)] = 0;
        req.fixed[static_cast<int>(snap::PageClass::ro)] = 1;
        req.fixed[static_cast<int>(snap::PageClass::cold)] = 2;
        if (frame_pages) {
            req.compress = true;
            req.frame_bytes = frame_pages * 4096;
        }
        snap::placed::place(split, req, (dir / "p.placed").string());
        snap::placed::PlacedReader r((dir / "p.placed").string());
        for (const auto& part : r.parts())
            CHECK(part.compression == (frame_pages ? snap::placed::Compression::zstd : snap::placed::Compression::none));
        snap::restore::PlacedSource source(r);

        std::byte* mem = static_cast<std::byte*>(mmap(nullptr, img.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        REQUIRE(mem != MAP_FAILED);
        const std::vector<Region> regions{{reinterpret_cast<uint64_t>(mem), img.size(), 0, 4096}};
        FaultServer server(Userfaultfd::create(UFFD_FEATURE_EVENT_REMOVE), regions, source, {});
        server.register_regions();
        std::vector<PageRange> eager;  // the working set, in first-touch order, a page at a time
        for (const auto& t : split_plan.order) eager.push_back({t.page, 1});
        // Windows of 3 pages: extents are cut across windows, and a window holds several extents.
        const uint64_t installed = source.install_hot_parts(server, eager, 3 * 4096);
        CHECK(installed == eager.size());
        // 38 touched pages, 7 of them zero (73, 78, 3, 8, 43, 53, 58): the RW and RO parts, each read once.
        CHECK(source.bytes_loaded() == 31 * 4096);
        CHECK(server.stats().eager_pages_zeroed == 7);
        {
            Serving serving(server);
            for (const auto& e : eager) CHECK(std::memcmp(mem + e.first_page * 4096, img.data() + e.first_page * 4096, 4096) == 0);
            CHECK(server.stats().faults == 0);
            for (size_t p = 0; p < pages; ++p) CHECK(std::memcmp(mem + p * 4096, img.data() + p * 4096, 4096) == 0);  // the rest on demand
        }
        CHECK(server.stats().faults > 0);
        munmap(mem, img.size());
        fs::remove_all(dir);
    }
}

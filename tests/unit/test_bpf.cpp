// SPDX-License-Identifier: Apache-2.0
// Pure logic of the bpf recording method: --gpa-map parsing and translation, virtual
// address → image offset through /proc/PID/maps text, and folding the event stream into
// first touches (order by timestamp, write upgrades, addresses outside the image).
#ifdef SNAPKIT_HAVE_BPF
#include "common/bpf/decode.hpp"
#include "common/error.hpp"

#include <doctest/doctest.h>
#include <sys/sysmacros.h>

using namespace snap;
using namespace snap::bpf;

namespace {

snapbpf_event ev(uint64_t time_ns, uint64_t seq, uint64_t page, uint8_t access, uint8_t flags = 0,
                 uint8_t source = SNAPBPF_SRC_FILE) {
    snapbpf_event e{};
    e.time_ns = time_ns;
    e.seq = seq;
    e.page = page;
    e.access = access;
    e.flags = flags;
    e.source = source;
    e.tgid = 42;
    e.level = 1;
    return e;
}

constexpr uint64_t P = 4096;

}  // namespace

TEST_SUITE("bpf") {

TEST_CASE("ABI: one event is 32 bytes, the dedup key 16") {
    CHECK(sizeof(snapbpf_event) == 32);
    CHECK(sizeof(snapbpf_key) == 16);
}

TEST_CASE("parse_size: decimal, hex, binary suffixes, overflow") {
    CHECK(parse_size("4096") == 4096u);
    CHECK(parse_size("0x1000") == 4096u);
    CHECK(parse_size("4K") == 4096u);
    CHECK(parse_size("3G") == 3ull << 30);
    CHECK(parse_size("0x10M") == 16ull << 20);
    CHECK_FALSE(parse_size(""));
    CHECK_FALSE(parse_size("G"));
    CHECK_FALSE(parse_size("12x"));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("99999999999999999999"));
    CHECK_FALSE(parse_size("17179869184G"));  // 2^34 GiB overflows
}

TEST_CASE("gpa map: identity below 3 GiB, refused above") {
    auto m = GpaMap::identity(256ull << 20);
    CHECK(m.to_offset(0) == 0u);
    CHECK(m.to_offset(0x1234000) == 0x1234000u);
    CHECK_FALSE(m.to_offset(256ull << 20));
    CHECK_NOTHROW(GpaMap::identity(3ull << 30));
    CHECK_THROWS_AS(GpaMap::identity((3ull << 30) + P), UsageError);
}

TEST_CASE("gpa map: split layout with a hole at 3 GiB") {
    const uint64_t image = 4ull << 30;
    auto m = GpaMap::parse("4G:3G:1G,0:0:3G", image);
    REQUIRE(m.regions().size() == 2);
    CHECK(m.regions()[0] == GpaRegion{0, 0, 3ull << 30});  // sorted by gpa
    CHECK(m.to_offset(0x1000) == 0x1000u);
    CHECK(m.to_offset((3ull << 30) - P) == (3ull << 30) - P);
    CHECK_FALSE(m.to_offset(3ull << 30));            // the PCI hole
    CHECK_FALSE(m.to_offset((4ull << 30) - P));
    CHECK(m.to_offset(4ull << 30) == 3ull << 30);
    CHECK(m.to_offset((5ull << 30) - P) == (4ull << 30) - P);
    CHECK_FALSE(m.to_offset(5ull << 30));
    CHECK(m.to_string() == "0x0:0x0:0xc0000000,0x100000000:0xc0000000:0x40000000");
}

TEST_CASE("gpa map: malformed, unaligned, overlapping or past the image") {
    const uint64_t image = 1ull << 30;
    CHECK_THROWS_AS(GpaMap::parse("", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0:0", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0:0:1G:5", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0:0:x", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0:0:0", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0x800:0:4K", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0:0:2G", image), UsageError);
    CHECK_THROWS_AS(GpaMap::parse("0:0:512M,256M:512M:256M", image), UsageError);  // gpa overlap
    CHECK_THROWS_AS(GpaMap::parse("0:0:512M,1G:256M:256M", image), UsageError);    // image overlap
    CHECK_NOTHROW(GpaMap::parse("0:0:512M,1G:512M:512M", image));
}

TEST_CASE("vaddr resolver: maps of the image file, re-read on an unknown address only") {
    const dev_t dev = makedev(254, 1);
    const uint64_t ino = 777;
    int reads = 0;
    std::string text =
        "55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]\n";
    auto reader = [&](pid_t) {
        ++reads;
        return sys::parse_maps(text);
    };
    VaddrResolver r(dev, ino, "/img/mem.img", reader);
    CHECK_FALSE(r.to_offset(7, 0x55d0c0001000));  // heap: not the image
    CHECK(reads == 1);
    CHECK_FALSE(r.to_offset(7, 0x55d0c0002000));  // inside a known mapping: no re-read
    CHECK(reads == 1);
    // The image gets mapped later, from file offset 0x200000.
    text += "7f0000000000-7f0000100000 r--p 00200000 fe:01 777                        /img/mem.img\n";
    CHECK(r.to_offset(7, 0x7f0000003000) == 0x203000u);
    CHECK(reads == 2);
    CHECK(r.to_offset(7, 0x7f0000004010) == 0x204010u);
    CHECK(reads == 2);
    CHECK_FALSE(r.to_offset(7, 0x7f0000100000));  // one past the end: re-read, still nothing
    CHECK(reads == 3);
    // Another file with the same inode number on another device does not match.
    text = "7f1000000000-7f1000001000 r--p 00000000 fe:02 777                        /other\n";
    CHECK_FALSE(r.to_offset(8, 0x7f1000000000));
}

TEST_CASE("vaddr resolver: process gone keeps what was known") {
    bool gone = false;
    auto reader = [&](pid_t) -> std::vector<sys::MapsEntry> {
        if (gone) throw Error("process 7 is gone");
        return sys::parse_maps("7f0000000000-7f0000001000 r--p 00000000 fe:01 5 /m\n");
    };
    VaddrResolver r(makedev(254, 1), 5, "/m", reader);
    CHECK(r.to_offset(7, 0x7f0000000800) == 0x800u);
    gone = true;
    CHECK(r.to_offset(7, 0x7f0000000000) == 0u);
    CHECK_FALSE(r.to_offset(7, 0x7f0000005000));
}

TEST_CASE("touch log: first touches ordered by timestamp, then sequence") {
    TouchLog log(64 * P, P);
    // Arrival order is not time order (two CPUs share one ring buffer).
    log.add(ev(300, 2, 5, SNAPBPF_READ), 5 * P);
    log.add(ev(100, 1, 9, SNAPBPF_WRITE), 9 * P);
    log.add(ev(100, 0, 3, SNAPBPF_READ), 3 * P);
    auto t = log.touches(50);
    REQUIRE(t.size() == 3);
    CHECK(t[0] == Touch{3, 50, 0, kAccessRead});
    CHECK(t[1] == Touch{9, 50, 1, kAccessRead | kAccessWrite});
    CHECK(t[2] == Touch{5, 250, 2, kAccessRead});
    CHECK(log.counters().events == 3);
}

TEST_CASE("touch log: a later write upgrades the first touch, keeping its rank and time") {
    TouchLog log(16 * P, P);
    log.add(ev(10, 0, 1, SNAPBPF_READ), 1 * P);
    log.add(ev(20, 1, 2, SNAPBPF_READ), 2 * P);
    log.add(ev(30, 2, 1, SNAPBPF_WRITE, SNAPBPF_EV_UPGRADE), 1 * P);
    auto t = log.touches(0);
    REQUIRE(t.size() == 2);
    CHECK(t[0] == Touch{1, 10, 0, kAccessRead | kAccessWrite});
    CHECK(t[1] == Touch{2, 20, 1, kAccessRead});
    CHECK(log.counters().upgrades == 1);
}

TEST_CASE("touch log: sources fold into one page; outside the image is counted, not kept") {
    TouchLog log(8 * P, P);
    log.add(ev(10, 0, 0x100, SNAPBPF_READ, 0, SNAPBPF_SRC_KVM_SPTE), 3 * P);  // gfn 0x100 → page 3
    log.add(ev(20, 1, 3, SNAPBPF_WRITE, 0, SNAPBPF_SRC_FILE), 3 * P);         // VMM writes it
    log.add(ev(30, 2, 9, SNAPBPF_READ), std::nullopt);                        // not in the map
    log.add(ev(40, 3, 8, SNAPBPF_READ), 8 * P);                               // past the end
    log.add(ev(5, 4, 0x7f, SNAPBPF_READ, SNAPBPF_EV_NODEDUP, SNAPBPF_SRC_VADDR), 3 * P + 17);
    auto t = log.touches(0);
    REQUIRE(t.size() == 1);
    CHECK(t[0] == Touch{3, 5, 0, kAccessRead | kAccessWrite});
    auto& c = log.counters();
    CHECK(c.outside_image == 2);
    CHECK(c.by_source[SNAPBPF_SRC_KVM_SPTE] == 1);
    CHECK(c.by_source[SNAPBPF_SRC_FILE] == 3);
    CHECK(c.by_source[SNAPBPF_SRC_VADDR] == 1);
    auto j = counters_json(c);
    CHECK(j["events"] == 5);
    CHECK(j["events_by_source"]["kvm_mmu_set_spte"] == 1);
    CHECK(j["outside_image_events"] == 2);
}

TEST_CASE("touch log: 2 MiB loading-set pages fold 4 KiB events; times before start clamp to 0") {
    const uint32_t huge = 2u << 20;
    TouchLog log(8ull * huge, huge);
    log.add(ev(1000, 0, 600, SNAPBPF_READ), 600 * P);  // 2 MiB page 1
    log.add(ev(900, 1, 513, SNAPBPF_WRITE), 513 * P);  // also page 1, earlier
    log.add(ev(2000, 2, 0, SNAPBPF_READ), 0);
    auto t = log.touches(950);
    REQUIRE(t.size() == 2);
    CHECK(t[0] == Touch{1, 0, 0, kAccessRead | kAccessWrite});
    CHECK(t[1] == Touch{0, 1050, 1, kAccessRead});
}

TEST_CASE("touch log: the result survives LoadingSet::normalize unchanged") {
    TouchLog log(1024 * P, P);
    for (uint64_t i = 0; i < 500; ++i) {
        uint64_t page = (i * 37) % 1024;
        log.add(ev(1000 - i, i, page, (i % 3) ? SNAPBPF_READ : SNAPBPF_WRITE), page * P);
    }
    LoadingSet ls;
    ls.touches = log.touches(0);
    auto before = ls.touches;
    ls.normalize();
    CHECK(ls.touches == before);
    for (size_t i = 1; i < ls.touches.size(); ++i) CHECK(ls.touches[i - 1].time_ns <= ls.touches[i].time_ns);
}

}  // TEST_SUITE
#endif

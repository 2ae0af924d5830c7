// SPDX-License-Identifier: Apache-2.0
// The raw-syscall layer's pure parts: /proc/PID/maps lines, pagemap entries, virtual → image
// page translation, wait-status decoding; plus a live PAGEMAP_SCAN/pread agreement check on
// our own private file mapping.
#include "common/sys/idlepoll.hpp"
#include "common/sys/mincore.hpp"
#include "common/sys/pagemap.hpp"
#include "common/sys/proc.hpp"
#include "common/sys/ptrace.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

using namespace snap::sys;

TEST_CASE("maps: an ordinary file mapping") {
    auto e = parse_maps_line("7f12a4000000-7f12b4000000 rw-p 00200000 fe:01 5308420                    /var/lib/img.raw\n");
    REQUIRE(e);
    CHECK(e->start == 0x7f12a4000000ull);
    CHECK(e->end == 0x7f12b4000000ull);
    CHECK(e->read);
    CHECK(e->write);
    CHECK_FALSE(e->exec);
    CHECK_FALSE(e->shared);
    CHECK(e->offset == 0x200000);
    CHECK(e->dev_major == 0xfe);
    CHECK(e->dev_minor == 0x01);
    CHECK(e->inode == 5308420);
    CHECK(e->path == "/var/lib/img.raw");
    CHECK_FALSE(e->deleted);
}

TEST_CASE("maps: paths with spaces, deleted files, anonymous and special mappings") {
    auto a = parse_maps_line("1000-3000 r--s 00000000 103:02 42 /mnt/my images/guest ram.img (deleted)");
    REQUIRE(a);
    CHECK(a->shared);
    CHECK(a->dev_major == 0x103);
    CHECK(a->dev_minor == 2);
    CHECK(a->path == "/mnt/my images/guest ram.img");
    CHECK(a->deleted);

    auto b = parse_maps_line("55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]");
    REQUIRE(b);
    CHECK(b->inode == 0);
    CHECK(b->path == "[heap]");

    auto c = parse_maps_line("7ffd1c9f0000-7ffd1c9f2000 r-xp 00000000 00:00 0");
    REQUIRE(c);  // anonymous: no path at all
    CHECK(c->path.empty());

    auto d = parse_maps_line("1000-2000 rw-p 00000000 00:05 77 /a  two  spaces ");
    REQUIRE(d);
    CHECK(d->path == "/a  two  spaces ");  // only the padding before the path is dropped
}

TEST_CASE("maps: malformed lines are refused") {
    CHECK_FALSE(parse_maps_line(""));
    CHECK_FALSE(parse_maps_line("zzzz-1000 rw-p 00000000 00:00 0"));
    CHECK_FALSE(parse_maps_line("2000-1000 rw-p 00000000 00:00 0"));  // end before start
    CHECK_FALSE(parse_maps_line("1000-2000 rw-x 00000000 00:00 0"));  // neither p nor s
    CHECK_FALSE(parse_maps_line("1000-2000 rw-p 00000000 0000 0"));
    CHECK_FALSE(parse_maps_line("1000-2000 rw-p 00000000 00:00 12abc /x"));
    auto all = parse_maps("1000-2000 rw-p 00000000 00:00 0\ngarbage\n3000-4000 r--p 00000000 08:01 9 /f\n");
    REQUIRE(all.size() == 2);
    CHECK(all[1].path == "/f");
}

TEST_CASE("image regions: matched by device and inode, several mappings, different offsets") {
    std::string text =
        "400000-401000 r-xp 00000000 fe:01 11 /usr/bin/qemu\n"
        "7f0000000000-7f0000100000 rw-p 00000000 fe:01 99 /img\n"        // pages 0..255
        "7f0000100000-7f0000200000 rw-p 00000000 00:00 0\n"               // anonymous hole
        "7f0000200000-7f0000300000 rw-p 00400000 fe:01 99 /img\n"        // file offset 4 MiB
        "7f1000000000-7f1000002000 r--s 00000000 fe:02 99 /other-disk\n"  // same inode, other device
        "7f2000000000-7f2000004000 rw-p 00001000 fe:01 99 /img (deleted)\n";
    auto regions = find_image_regions(parse_maps(text), makedev(0xfe, 1), 99);
    REQUIRE(regions.size() == 3);
    CHECK(regions[0] == ImageRegion{0x7f0000000000, 0x7f0000100000, 0, false, true});
    CHECK(regions[1].file_offset == 0x400000);
    CHECK(regions[2].file_offset == 0x1000);

    const uint64_t pages = 2048;  // an 8 MiB image
    CHECK(image_page_of(regions[0], 0x7f0000000000, 4096, pages) == 0u);
    CHECK(image_page_of(regions[0], 0x7f0000000fff, 4096, pages) == 0u);
    CHECK(image_page_of(regions[0], 0x7f0000001000, 4096, pages) == 1u);
    CHECK(image_page_of(regions[1], 0x7f0000200000, 4096, pages) == 1024u);
    CHECK(image_page_of(regions[1], 0x7f00002ff000, 4096, pages) == 1279u);
    CHECK(image_page_of(regions[2], 0x7f2000000000, 4096, pages) == 1u);
    CHECK(image_page_of(regions[2], 0x7f2000003000, 4096, pages) == 4u);
    CHECK_FALSE(image_page_of(regions[0], 0x7f0000100000, 4096, pages));  // past the region
    CHECK_FALSE(image_page_of(regions[0], 0x7effffffffff, 4096, pages));  // before it
    // 2 MiB image pages: eight 4 KiB... pages of the mapping share one image page.
    CHECK(image_page_of(regions[1], 0x7f0000200000, 2u << 20, 4) == 2u);
    // A mapping past the image's end.
    ImageRegion beyond{0x1000000, 0x1004000, 2047 * 4096ull, false, false};
    CHECK(image_page_of(beyond, 0x1000000, 4096, pages) == 2047u);
    CHECK_FALSE(image_page_of(beyond, 0x1001000, 4096, pages));
}

TEST_CASE("status fields") {
    std::string st = "Name:\tqemu\nTgid:\t4242\nPid:\t4243\nTracerPid:\t0\nThreads:\t7\n";
    CHECK(status_field(st, "Tgid") == "4242");
    CHECK(status_field(st, "TracerPid") == "0");
    CHECK(status_field(st, "Threads") == "7");
    CHECK_FALSE(status_field(st, "Tgi"));
    CHECK_FALSE(status_field(st, "Missing"));
}

TEST_CASE("pagemap entries decode") {
    auto file_page = decode_pagemap_entry((1ull << 63) | (1ull << 61) | (1ull << 56) | 0x12345);
    CHECK(file_page.present);
    CHECK(file_page.file_or_shared_anon);
    CHECK(file_page.exclusive);
    CHECK(file_page.pfn == 0x12345);
    PageState st;
    REQUIRE(classify_pagemap_entry(file_page, st));
    CHECK(st == PageState::file);

    auto cow = decode_pagemap_entry((1ull << 63) | (1ull << 55));  // present, anonymous, soft-dirty
    CHECK(cow.soft_dirty);
    CHECK(cow.pfn == 0);  // no CAP_SYS_ADMIN: PFN reads as zero; the flags are what we need
    REQUIRE(classify_pagemap_entry(cow, st));
    CHECK(st == PageState::anon);

    auto swapped = decode_pagemap_entry((1ull << 62) | 0x7777);  // swapped anonymous copy
    CHECK(swapped.swapped);
    CHECK(swapped.pfn == 0);  // bits 0-54 are the swap entry, not a PFN
    REQUIRE(classify_pagemap_entry(swapped, st));
    CHECK(st == PageState::anon);

    CHECK_FALSE(classify_pagemap_entry(decode_pagemap_entry(0), st));
    CHECK_FALSE(classify_pagemap_entry(decode_pagemap_entry(1ull << 55), st));  // soft-dirty only
}

TEST_CASE("PAGEMAP_SCAN ABI sizes") {
    CHECK(sizeof(pm::ScanArg) == 96);
    CHECK(sizeof(pm::PageRegion) == 24);
    CHECK(pm::kIoctl == 0xc0606610ul);
}

TEST_CASE("wait statuses of a seized tracee") {
    using ptrace::WaitEvent;
    auto exited = ptrace::decode_wait_status(3 << 8);
    CHECK(exited.kind == WaitEvent::exited);
    CHECK(exited.code == 3);
    CHECK(ptrace::shell_status(exited) == 3);
    auto killed = ptrace::decode_wait_status(SIGKILL);
    CHECK(killed.kind == WaitEvent::killed);
    CHECK(ptrace::shell_status(killed) == 137);
    auto sig = ptrace::decode_wait_status((SIGUSR1 << 8) | 0x7f);
    CHECK(sig.kind == WaitEvent::signal_stop);
    CHECK(sig.code == SIGUSR1);
    auto exit_ev = ptrace::decode_wait_status((ptrace::kExit << 16) | (SIGTRAP << 8) | 0x7f);
    CHECK(exit_ev.kind == WaitEvent::event_stop);
    CHECK(exit_ev.event == ptrace::kExit);
    auto group = ptrace::decode_wait_status((ptrace::kStop << 16) | (SIGSTOP << 8) | 0x7f);
    CHECK(group.kind == WaitEvent::group_stop);
    auto fresh = ptrace::decode_wait_status((ptrace::kStop << 16) | (SIGTRAP << 8) | 0x7f);
    CHECK(fresh.kind == WaitEvent::event_stop);
    CHECK(fresh.event == ptrace::kStop);
}

namespace {
// A private mapping of a scratch file with known pages read and written.
struct ScratchMapping {
    std::string path = "/tmp/snapkit-unit-sys-" + std::to_string(getpid());
    int fd = -1;
    unsigned char* base = nullptr;
    size_t bytes = 64 * 4096;
    ScratchMapping() {
        fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        std::vector<unsigned char> data(bytes, 0x5a);
        REQUIRE(::write(fd, data.data(), bytes) == static_cast<ssize_t>(bytes));
        base = static_cast<unsigned char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
        REQUIRE(base != MAP_FAILED);
    }
    ~ScratchMapping() {
        ::munmap(base, bytes);
        ::close(fd);
        ::unlink(path.c_str());
    }
};

std::map<uint64_t, PageState> scan_all(PagemapScanner& s, uint64_t start, uint64_t end) {
    std::map<uint64_t, PageState> out;
    s.scan(start, end, [&](uint64_t a, uint64_t b, PageState st) {
        for (uint64_t va = a; va < b; va += 4096) out[(va - start) / 4096] = st;
    });
    return out;
}
}  // namespace

TEST_CASE("live: PAGEMAP_SCAN and pagemap reads agree on our own private mapping") {
    ScratchMapping m;
    volatile unsigned char sink = 0;
    for (size_t p : {1, 5, 6, 40}) sink = sink + m.base[p * 4096];
    for (size_t p : {6, 10, 63}) m.base[p * 4096 + 7] = 1;
    (void)sink;
    uint64_t start = reinterpret_cast<uint64_t>(m.base), end = start + m.bytes;
    PagemapScanner with_ioctl(getpid(), true), with_read(getpid(), false);
    auto a = scan_all(with_ioctl, start, end);
    auto b = scan_all(with_read, start, end);
    CHECK(a == b);
    CHECK(a.at(1) == PageState::file);
    CHECK(a.at(40) == PageState::file);
    CHECK(a.at(6) == PageState::anon);
    CHECK(a.at(10) == PageState::anon);
    CHECK(a.at(63) == PageState::anon);
    // Untouched neighbours may be mapped by fault-around (read), never as private copies.
    CHECK((a.count(2) == 0 || a.at(2) == PageState::file));
    std::string how = with_ioctl.using_ioctl() ? "available" : "missing: pread fallback";
    MESSAGE("PAGEMAP_SCAN " << how);
}

TEST_CASE("live: mincore sees a dropped file come back") {
    ScratchMapping m;
    ::fsync(m.fd);
    FileResidency r(m.path);
    r.drop_cache();
    uint64_t after_drop = r.count_resident();
    char buf[4096];
    REQUIRE(::pread(m.fd, buf, sizeof buf, 0) == 4096);
    CHECK(r.count_resident() >= 1);
    if (after_drop) MESSAGE(after_drop << " pages stayed resident after the drop (tmpfs?)");
}

TEST_CASE("idle polling: a CPU latency request of 0 us while held, none once released or dropped") {
    const int64_t before = IdlePolling::current_limit_us();
    {
        IdlePolling ip;
        if (!ip.available()) {  // not root: the device is root's
            CHECK(!ip.why_unavailable().empty());
            ip.hold();
            CHECK(!ip.held());
            return;
        }
        CHECK(!ip.held());
        if (before == 0) {  // another process holds idle cores polling already: nothing to see
            ip.hold();
            CHECK(ip.windows() == 1);
            return;
        }
        REQUIRE(before > 0);
        CHECK(IdlePolling::current_limit_us() == before);  // opened: no constraint yet
        ip.hold();
        CHECK(ip.held());
        CHECK(IdlePolling::current_limit_us() == 0);
        ip.hold();  // held already: still one window
        CHECK(ip.windows() == 1);
        ip.release();
        CHECK(!ip.held());
        CHECK(IdlePolling::current_limit_us() == before);
        ip.hold();
        CHECK(ip.windows() == 2);
        CHECK(IdlePolling::current_limit_us() == 0);
        CHECK(ip.held_ns() > 0);
    }  // dropped while held: the kernel forgets the request with the descriptor
    CHECK(IdlePolling::current_limit_us() == before);
}

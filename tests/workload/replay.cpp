// SPDX-License-Identifier: Apache-2.0
// replay: a host process that restores a memory image the way a VMM would and replays one
// function's recorded loading set at native speed — bench/restore's primary figure, because
// on PVM hosts guest execution is emulated and swamps every memory cost.
//
//   replay IMAGE LOADSET [--dram] [--gaps SCALE] [--window-ms W] [--verify] [-o FILE]
//
// The image is opened by path and mapped PROT_READ|PROT_WRITE, MAP_PRIVATE, whole, at offset
// 0 — what QEMU's memory-backend-file,share=off and Firecracker's File backend do — so that
// under `snap-restore --exec` the preload recognises the mapping and lays the strategy's plan
// over it before mmap() returns. Then every touch of the loading set, in first-touch order:
// a page with the write bit gets an 8-byte store at its start (one write fault, as a guest's
// first write), any other page an 8-byte load. --gaps SCALE waits, before each touch, until
// SCALE x its recorded time (time_ns, relative to the first touch) has passed since the
// mapping was ready (default: no gaps, the pure memory cost).
// --window-ms W plays a VMM's own set-up between mapping guest memory and running the guest
// (QEMU loading device state, Firecracker its snapshot): after mmap() returns, the first touch
// waits W ms, asleep (the CPU is free meanwhile for eager work that snap-restore --overlap
// left running), and the window counts in restore_to_last_touch_ns. Default 0: no window.
// --dram is the floor: an anonymous mapping into which the whole image is pread() first (the
// copy is reported as ready_ns but the touches then find every page resident).
// --verify (after the clock stops) compares every touched page and every 61st page of the
// image against the file read with pread(): a restore that maps wrong bytes is an error
// (exit 1), never a measurement. Written pages are compared except for the stored word,
// which must hold the marker. --verify-resident limits the every-61st sample to pages that
// are already in memory (present in /proc/self/pagemap): the check then serves nothing on
// demand, so a fault server's count is the touches' own (bench/restore's misprediction
// table counts COLD faults so); the touched pages are all compared either way.
//
// Output: one JSON object (stdout, or -o FILE since a wrapper may own stdout). Times are
// CLOCK_MONOTONIC: ready_ns = open+mmap (with the preload: the plan applied, copies
// included), touch_ns = first to last touch, restore_to_last_touch_ns = their sum.
// private_dram_bytes: anonymous memory (new pages and copy-on-write copies) after the last
// touch, minus before the mapping (/proc/self/smaps_rollup).
#include "common/loadset.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Options {
    std::string image, loadset, output;
    bool dram = false, verify = false, verify_resident = false;
    double gap_scale = 0;  // 0 = no gaps
    double window_ms = 0;  // the VMM's set-up window before the first touch
};

[[noreturn]] void fail(const std::string& what, int code = 1) {
    std::fprintf(stderr, "replay: error: %s\n", what.c_str());
    std::exit(code);
}

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "replay: error: %s\nusage: replay IMAGE LOADSET [--dram] [--gaps SCALE] [--window-ms W] [--verify [--verify-resident]] [-o FILE]\n",
                 why.c_str());
    std::exit(2);
}

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

Options parse(int argc, char** argv) {
    Options o;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--dram") o.dram = true;
        else if (a == "--verify") o.verify = true;
        else if (a == "--verify-resident") o.verify = o.verify_resident = true;
        else if (a == "--gaps") {
            std::string v = value();
            char* end = nullptr;
            o.gap_scale = std::strtod(v.c_str(), &end);
            if (!end || *end || o.gap_scale < 0) usage("--gaps " + v + ": expected a scale >= 0");
        } else if (a == "--window-ms") {
            std::string v = value();
            char* end = nullptr;
            o.window_ms = std::strtod(v.c_str(), &end);
            if (!end || *end || o.window_ms < 0) usage("--window-ms " + v + ": expected milliseconds >= 0");
        } else if (a == "-o" || a == "--output") o.output = value();
        else if (a == "-h" || a == "--help") usage("help");
        else if (!a.empty() && a[0] == '-') usage("unknown option " + a);
        else pos.push_back(a);
    }
    if (pos.size() != 2) usage("expected IMAGE and LOADSET");
    o.image = pos[0];
    o.loadset = pos[1];
    return o;
}

constexpr uint64_t kMarker = 0x5a5a'1234'beef'0000ull;

// This process's private anonymous memory (anonymous pages and copy-on-write copies of file
// pages, huge pages included) and the part of it in huge pages, from /proc/self/smaps_rollup.
struct PrivateMemory {
    uint64_t anon_bytes = 0, anon_huge_bytes = 0;
};
PrivateMemory private_memory() {
    PrivateMemory m;
    FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
    if (!f) return m;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long kb = 0;
        if (std::sscanf(line, "Anonymous: %llu kB", &kb) == 1) m.anon_bytes = kb * 1024;
        else if (std::sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) m.anon_huge_bytes = kb * 1024;
    }
    std::fclose(f);
    return m;
}

void pread_all(int fd, char* dst, size_t len, off_t off, const std::string& path) {
    while (len) {
        ssize_t n = ::pread(fd, dst, len, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(path + ": read failed: " + (n < 0 ? std::strerror(errno) : "short file"));
        dst += n;
        off += n;
        len -= size_t(n);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const uint64_t t_main = now_ns();
    Options opt = parse(argc, argv);
    snap::LoadingSet ls;
    try {
        ls = snap::read_loadset(opt.loadset);
    } catch (const std::exception& e) {
        fail(e.what(), 3);
    }
    if (opt.gap_scale > 0 && !ls.has_time) usage("--gaps: the loading set has no timestamps (method " + ls.method + ")");
    const uint64_t ps = ls.image.page_size;
    // Touch plan built before the clock starts: addresses are offsets, writes flagged.
    struct Step {
        uint64_t offset, at_ns;
        bool write;
    };
    std::vector<Step> steps;
    steps.reserve(ls.touches.size());
    const uint64_t t0_rec = ls.touches.empty() ? 0 : ls.touches.front().time_ns;
    uint64_t writes = 0;
    for (const auto& t : ls.touches) {
        if (t.page >= ls.image.pages()) fail(opt.loadset + ": page " + std::to_string(t.page) + " beyond the image", 3);
        const bool w = t.access & snap::kAccessWrite;
        writes += w;
        const uint64_t rel = t.time_ns >= t0_rec ? t.time_ns - t0_rec : 0;
        steps.push_back({t.page * ps, uint64_t(double(rel) * opt.gap_scale), w});
    }

    rusage ru0{}, ru1{}, ru2{};
    const PrivateMemory mem0 = private_memory();
    getrusage(RUSAGE_SELF, &ru0);
    const uint64_t t_map0 = now_ns();
    int fd = ::open(opt.image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(opt.image + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) fail(opt.image + ": " + std::strerror(errno));
    const size_t size = size_t(st.st_size);
    if (size != ls.image.size_bytes)
        fail(opt.image + ": " + std::to_string(size) + " bytes, the loading set's image has " + std::to_string(ls.image.size_bytes), 3);
    char* base;
    if (opt.dram) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) fail(std::string("mmap anonymous: ") + std::strerror(errno));
        base = static_cast<char*>(p);
        pread_all(fd, base, size, 0, opt.image);
    } else {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) fail(opt.image + ": mmap: " + std::strerror(errno));
        base = static_cast<char*>(p);
    }
    const uint64_t t_ready = now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    if (opt.window_ms > 0) {  // the VMM's own set-up, asleep
        const uint64_t until = t_ready + uint64_t(opt.window_ms * 1e6);
        for (uint64_t t; (t = now_ns()) < until;) {
            timespec d{time_t((until - t) / 1000000000ull), long((until - t) % 1000000000ull)};
            ::nanosleep(&d, nullptr);
        }
    }
    const uint64_t t_run = now_ns();

    uint64_t sink = 0;
    if (opt.gap_scale > 0) {
        for (const auto& s : steps) {
            while (now_ns() - t_run < s.at_ns) {
            }
            if (s.write) *reinterpret_cast<volatile uint64_t*>(base + s.offset) = kMarker ^ s.offset;
            else sink += *reinterpret_cast<volatile uint64_t*>(base + s.offset);
        }
    } else {
        for (const auto& s : steps) {
            if (s.write) *reinterpret_cast<volatile uint64_t*>(base + s.offset) = kMarker ^ s.offset;
            else sink += *reinterpret_cast<volatile uint64_t*>(base + s.offset);
        }
    }
    const uint64_t t_last = now_ns();
    getrusage(RUSAGE_SELF, &ru2);
    const PrivateMemory mem1 = private_memory();

    nlohmann::json out = {
        {"image", opt.image},
        {"loadset", opt.loadset},
        {"mode", opt.dram ? "dram" : "map_private"},
        {"gaps", opt.gap_scale > 0 ? opt.gap_scale : 0.0},
        {"pages", steps.size()},
        {"read_pages", steps.size() - writes},
        {"written_pages", writes},
        {"main_to_map_ns", t_map0 - t_main},
        {"ready_ns", t_ready - t_map0},
        {"window_ns", t_run - t_ready},
        {"touch_ns", t_last - t_run},
        {"restore_to_last_touch_ns", t_last - t_map0},
        {"ns_per_page", steps.empty() ? 0.0 : double(t_last - t_map0) / double(steps.size())},
        {"touch_ns_per_page", steps.empty() ? 0.0 : double(t_last - t_run) / double(steps.size())},
        {"faults_ready", {{"minor", ru1.ru_minflt - ru0.ru_minflt}, {"major", ru1.ru_majflt - ru0.ru_majflt}}},
        {"faults_touch", {{"minor", ru2.ru_minflt - ru1.ru_minflt}, {"major", ru2.ru_majflt - ru1.ru_majflt}}},
        {"sink", sink & 1},
        // Private DRAM the restore left (anonymous pages and copy-on-write copies, 4 KiB or
        // huge), measured after the last touch against before the mapping.
        {"private_dram_bytes", mem1.anon_bytes > mem0.anon_bytes ? mem1.anon_bytes - mem0.anon_bytes : 0},
        {"private_huge_bytes", mem1.anon_huge_bytes > mem0.anon_huge_bytes ? mem1.anon_huge_bytes - mem0.anon_huge_bytes : 0},
    };

    if (opt.verify) {
        std::vector<char> want(ps);
        uint64_t checked = 0, bad = 0, first_bad = ~0ull;
        auto check = [&](uint64_t page, bool written) {
            const uint64_t off = page * ps;
            pread_all(fd, want.data(), ps, off_t(off), opt.image);
            const char* got = base + off;
            bool ok;
            if (written) {
                uint64_t word;
                std::memcpy(&word, got, 8);
                ok = word == (kMarker ^ off) && std::memcmp(got + 8, want.data() + 8, ps - 8) == 0;
            } else {
                ok = std::memcmp(got, want.data(), ps) == 0;
            }
            ++checked;
            if (!ok) {
                ++bad;
                if (first_bad == ~0ull) first_bad = page;
            }
        };
        std::vector<uint8_t> touched(ls.image.pages(), 0);
        for (const auto& s : steps) {
            touched[s.offset / ps] = s.write ? 2 : 1;
            check(s.offset / ps, s.write);
        }
        uint64_t skipped = 0;
        const int pm = opt.verify_resident ? ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
        if (opt.verify_resident && pm < 0) fail(std::string("/proc/self/pagemap: ") + std::strerror(errno));
        for (uint64_t p = 0; p < ls.image.pages(); p += 61) {
            if (touched[p]) continue;
            if (pm >= 0) {
                uint64_t entry = 0;
                const off_t at = off_t((reinterpret_cast<uintptr_t>(base) + p * ps) / 4096 * 8);
                if (::pread(pm, &entry, 8, at) != 8) fail(std::string("/proc/self/pagemap: ") + std::strerror(errno));
                if (!(entry >> 63 & 1)) {  // not in memory: reading it would fault it in
                    ++skipped;
                    continue;
                }
            }
            check(p, false);
        }
        if (pm >= 0) ::close(pm);
        out["verify"] = {{"pages", checked}, {"mismatched_pages", bad}};
        if (opt.verify_resident) out["verify"]["skipped_absent_pages"] = skipped;
        if (bad) {
            out["verify"]["first_mismatch_page"] = first_bad;
            std::fprintf(stderr, "replay: error: %s: %llu of %llu checked pages differ from the image (first: page %llu)\n",
                         opt.image.c_str(), (unsigned long long)bad, (unsigned long long)checked,
                         (unsigned long long)first_bad);
        }
    }
    const std::string text = out.dump() + "\n";
    if (opt.output.empty()) {
        std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
        FILE* f = std::fopen(opt.output.c_str(), "w");
        if (!f) fail(opt.output + ": " + std::strerror(errno));
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
    }
    if (opt.verify && out["verify"]["mismatched_pages"].get<uint64_t>() != 0) return 1;
    return 0;
}

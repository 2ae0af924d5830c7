// SPDX-License-Identifier: Apache-2.0
// fcclient: plays Firecracker's part of the UFFD memory backend, to test a page-fault handler
// without a VM. It does what Firecracker does on snapshot load with a Uffd backend: maps
// guest memory anonymous private (several regions, with holes between them in the host
// address space, image offsets the running sum), creates a userfaultfd asking for
// UFFD_FEATURE_EVENT_REMOVE, registers the regions MISSING, connects to the handler's socket
// and sends one JSON array of regions with the userfaultfd as SCM_RIGHTS, then closes the
// socket. Then it plays the guest: threads touch pages (reads and writes) and every page is
// checked against the image; then a balloon inflation (madvise DONTNEED → UFFD_EVENT_REMOVE)
// must read back as zeros. Exit 0 only if every page is right.
//
// Deliberately independent of snap::uffd (raw syscalls): a test must not share the bugs of
// the code under test.
//
//   fcclient make-image IMG --mib 48 [--zero-percent 40] [--seed 1]
//   fcclient --socket S --image IMG [--regions-mib 32,16] [--threads 2] [--write-percent 30]
//            [--order random|seq] [--balloon-mib 4] [--legacy-field] [--huge-pages] [--json]
//            [--touch-list FILE]
//
// --touch-list FILE: the guest touches only these pages, in this order, on one thread —
// `snap-stat --list LOADSET` lines "PAGE ACCESS RANK TIME_NS" (ACCESS with W: a write), taken
// in RANK order — as bench/restore's replay does under --exec; handshake_to_touched_ns is then
// a --serve restore's handshake-to-last-touch. Every page is still checked afterwards.
//
// --huge-pages: guest memory of 2 MiB huge pages (MAP_HUGETLB, as Firecracker's
// huge_pages: 2M), page_size 2 MiB in the message; regions must be multiples of 2 MiB and
// huge pages reserved (vm.nr_hugepages).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kHugePage = 2 << 20;

uint64_t mix(uint64_t x) {  // splitmix64: deterministic page contents
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t now_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "fcclient: error: %s%s%s\n", what.c_str(), errno ? ": " : "", errno ? std::strerror(errno) : "");
    std::exit(1);
}

int make_image(const std::string& path, uint64_t mib, unsigned zero_percent, uint64_t seed) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open " + path);
    std::vector<uint64_t> page(kPage / 8);
    uint64_t pages = mib * 256;
    for (uint64_t i = 0; i < pages; ++i) {
        uint64_t h = mix(seed * 1000003 + i);
        // Zero pages come in runs (as in real guests): decide per 8-page group, then per page.
        bool zero = (mix(h ^ (i / 8)) % 100) < zero_percent && (h % 8) != 0;
        if (zero) std::fill(page.begin(), page.end(), 0);
        else
            for (size_t k = 0; k < page.size(); ++k) page[k] = mix(h + k) | 1;
        if (::write(fd, page.data(), kPage) != static_cast<ssize_t>(kPage)) die("write " + path);
    }
    ::close(fd);
    return 0;
}

struct Region {
    uint8_t* base;
    uint64_t size;
    uint64_t offset;
};

int open_userfaultfd() {
    int flags = O_CLOEXEC | O_NONBLOCK;
    int fd = static_cast<int>(::syscall(SYS_userfaultfd, flags));
    if (fd >= 0) return fd;
    int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return -1;
    fd = ::ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    ::close(dev);
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Firecracker's side of the UFFD backend protocol, for testing a page-fault handler", "fcclient"};
    std::string socket_path, image_path, regions_mib = "32,16", order = "random", touch_list;
    unsigned threads = 2, write_percent = 30, balloon_mib = 4;
    bool legacy = false, json = false, huge = false;
    unsigned delay_ms = 0;
    app.add_option("--socket", socket_path, "The handler's unix socket");
    app.add_option("--image", image_path, "The memory image the handler serves (expected bytes)");
    app.add_option("--regions-mib", regions_mib, "Region sizes in MiB, comma separated")->capture_default_str();
    app.add_option("--threads", threads, "Threads touching memory")->capture_default_str();
    app.add_option("--write-percent", write_percent, "Share of first touches that are writes")->capture_default_str();
    app.add_option("--order", order, "Touch order: random or seq")->capture_default_str();
    app.add_option("--balloon-mib", balloon_mib, "Balloon this much of region 0 (0: no balloon)")->capture_default_str();
    app.add_option("--delay-ms", delay_ms, "Wait after the handshake before touching (Firecracker restoring devices)");
    app.add_flag("--legacy-field", legacy, "Send page_size_kib (older Firecracker) instead of page_size");
    app.add_flag("--huge-pages", huge, "Guest memory of 2 MiB huge pages (MAP_HUGETLB), page_size 2 MiB in the message");
    app.add_flag("--json", json, "Print the figures as one JSON object");
    app.add_option("--touch-list", touch_list, "Touch only these pages, in order, on one thread (snap-stat --list of a loading set)");
    auto* mk = app.add_subcommand("make-image", "Write a deterministic test image (data and zero pages)");
    std::string mk_path;
    uint64_t mk_mib = 48, mk_seed = 1;
    unsigned mk_zero = 40;
    mk->add_option("path", mk_path)->required();
    mk->add_option("--mib", mk_mib)->capture_default_str();
    mk->add_option("--zero-percent", mk_zero)->capture_default_str();
    mk->add_option("--seed", mk_seed)->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    if (mk->parsed()) return make_image(mk_path, mk_mib, mk_zero, mk_seed);
    if (socket_path.empty() || image_path.empty()) {
        std::fprintf(stderr, "fcclient: error: --socket and --image are required\n");
        return 2;
    }

    // The expected bytes.
    int ifd = ::open(image_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ifd < 0) die("open " + image_path);
    struct stat st {};
    ::fstat(ifd, &st);
    std::vector<uint8_t> image(static_cast<size_t>(st.st_size));
    for (size_t got = 0; got < image.size();) {
        ssize_t n = ::pread(ifd, image.data() + got, image.size() - got, static_cast<off_t>(got));
        if (n <= 0) die("read " + image_path);
        got += static_cast<size_t>(n);
    }
    ::close(ifd);

    // Guest memory: one anonymous private mapping per region, a 2 MiB hole between regions.
    std::vector<uint64_t> sizes;
    for (size_t pos = 0; pos < regions_mib.size();) {
        size_t comma = regions_mib.find(',', pos);
        sizes.push_back(std::stoull(regions_mib.substr(pos, comma - pos)) << 20);
        pos = comma == std::string::npos ? regions_mib.size() : comma + 1;
    }
    uint64_t total = 0;
    for (uint64_t s : sizes) total += s;
    if (total != image.size()) {
        errno = 0;
        die("regions add up to " + std::to_string(total) + " bytes, the image has " + std::to_string(image.size()));
    }
    constexpr uint64_t kHole = 2 << 20;
    uint64_t span = total + kHole * sizes.size();
    auto* reserve = static_cast<uint8_t*>(::mmap(nullptr, span + (2 << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (reserve == MAP_FAILED) die("mmap reservation");
    auto* cursor = reinterpret_cast<uint8_t*>((reinterpret_cast<uint64_t>(reserve) + (2 << 20) - 1) & ~uint64_t((2 << 20) - 1));
    std::vector<Region> regions;
    uint64_t offset = 0;
    for (uint64_t s : sizes) {
        if (huge && s % kHugePage) {
            errno = 0;
            die("--huge-pages: region of " + std::to_string(s) + " bytes is not a multiple of 2 MiB");
        }
        const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (huge ? MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) : MAP_NORESERVE);
        void* p = ::mmap(cursor, s, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (p == MAP_FAILED) die(huge ? "mmap region MAP_HUGETLB (are 2 MiB huge pages reserved? vm.nr_hugepages)" : "mmap region");
        regions.push_back({static_cast<uint8_t*>(p), s, offset});
        offset += s;
        ::munmap(cursor + s, kHole);  // a real hole: nothing mapped between regions
        cursor += s + kHole;
    }

    // The userfaultfd, as Firecracker builds it.
    int uffd = open_userfaultfd();
    if (uffd < 0) {
        std::fprintf(stderr, "fcclient: skipped: userfaultfd unavailable: %s\n", std::strerror(errno));
        return 77;
    }
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_EVENT_REMOVE;
    if (::ioctl(uffd, UFFDIO_API, &api) != 0) die("UFFDIO_API");
    for (const Region& r : regions) {
        uffdio_register reg{};
        reg.range.start = reinterpret_cast<uint64_t>(r.base);
        reg.range.len = r.size;
        reg.mode = UFFDIO_REGISTER_MODE_MISSING;
        if (::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) die("UFFDIO_REGISTER");
    }

    // Connect (the handler may still be starting) and send the one message.
    nlohmann::json msg = nlohmann::json::array();
    for (const Region& r : regions)
        msg.push_back({{"base_host_virt_addr", reinterpret_cast<uint64_t>(r.base)},
                       {"size", r.size},
                       {"offset", r.offset},
                       {legacy ? "page_size_kib" : "page_size", huge ? kHugePage : kPage}});
    std::string text = msg.dump();
    int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
    for (int tries = 0;; ++tries) {
        if (::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
        if (tries > 200) die("connect " + socket_path);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    iovec iov{text.data(), text.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &uffd, sizeof uffd);
    if (::sendmsg(sock, &mh, 0) != static_cast<ssize_t>(text.size())) die("sendmsg");
    ::close(sock);  // Firecracker drops the stream once the message is sent
    uint64_t t_handshake = now_ns();
    if (delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));

    // The guest: T threads touch every page once, in random (or address) order.
    std::vector<std::pair<uint8_t*, uint64_t>> pages;  // address, image offset
    std::vector<bool> listed_write;                    // --touch-list: the page's first touch writes
    if (!touch_list.empty()) {
        FILE* f = std::fopen(touch_list.c_str(), "r");
        if (!f) die("open " + touch_list);
        struct Listed {
            uint64_t rank, page;
            bool write;
        };
        std::vector<Listed> listed;
        unsigned long long page = 0, rank = 0, t = 0;
        char access[8] = {};
        while (std::fscanf(f, "%llu %7s %llu %llu", &page, access, &rank, &t) == 4)
            listed.push_back({rank, page, std::strchr(access, 'W') != nullptr});
        std::fclose(f);
        std::sort(listed.begin(), listed.end(), [](const Listed& a, const Listed& b) { return a.rank < b.rank; });
        for (const Listed& l : listed) {
            const uint64_t off = l.page * kPage;
            for (const Region& r : regions)
                if (off >= r.offset && off < r.offset + r.size) {
                    pages.push_back({r.base + (off - r.offset), off});
                    listed_write.push_back(l.write);
                }
        }
        threads = 1;
    } else {
        for (const Region& r : regions)
            for (uint64_t o = 0; o < r.size; o += kPage) pages.push_back({r.base + o, r.offset + o});
        if (order == "random") std::shuffle(pages.begin(), pages.end(), std::mt19937_64(42));
    }
    std::vector<std::vector<uint32_t>> lat(threads);
    std::atomic<uint64_t> writes{0};
    uint64_t t0 = now_ns();
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            auto& l = lat[t];
            l.reserve(pages.size() / threads + 1);
            for (size_t i = t; i < pages.size(); i += threads) {
                uint8_t* p = pages[i].first;
                bool write = listed_write.empty() ? mix(pages[i].second) % 100 < write_percent : bool(listed_write[i]);
                uint64_t a = now_ns();
                if (write) {
                    // A write that keeps the bytes: the fault is a write fault all the same.
                    __atomic_fetch_or(reinterpret_cast<uint64_t*>(p), 0, __ATOMIC_RELAXED);
                    writes.fetch_add(1, std::memory_order_relaxed);
                } else {
                    (void)*reinterpret_cast<volatile uint8_t*>(p + 64);
                }
                l.push_back(static_cast<uint32_t>(std::min<uint64_t>(now_ns() - a, UINT32_MAX)));
            }
        });
    }
    for (auto& th : pool) th.join();
    uint64_t t_touched = now_ns();

    // Every page must hold the image's bytes.
    uint64_t bad = 0;
    for (const Region& r : regions)
        for (uint64_t o = 0; o < r.size; o += kPage)
            if (std::memcmp(r.base + o, image.data() + r.offset + o, kPage) != 0) {
                if (bad < 5) std::fprintf(stderr, "fcclient: page at image offset 0x%llx differs\n", static_cast<unsigned long long>(r.offset + o));
                ++bad;
            }

    // Balloon: the guest gives back part of region 0; Firecracker madvises it away. The
    // handler sees UFFD_EVENT_REMOVE; the range must read back as zeros from now on.
    uint64_t balloon_bad = 0, balloon_pages = 0;
    if (balloon_mib) {
        const Region& r = regions[0];
        uint64_t len = std::min<uint64_t>(uint64_t(balloon_mib) << 20, r.size / 2);
        uint8_t* at = r.base + r.size / 4;
        if (huge) {  // hugetlb memory is given back in whole huge pages
            len = len / kHugePage * kHugePage;
            at = r.base + (r.size / 4) / kHugePage * kHugePage;
        }
        if (::madvise(at, len, MADV_DONTNEED) != 0) die("madvise");
        balloon_pages = len / kPage;
        std::vector<std::thread> readers;
        std::atomic<uint64_t> nonzero{0};
        for (unsigned t = 0; t < threads; ++t)
            readers.emplace_back([&, t] {
                for (uint64_t o = t * kPage; o < len; o += threads * kPage) {
                    const uint8_t* p = at + o;
                    bool z = true;
                    for (uint64_t k = 0; k < kPage && z; ++k) z = p[k] == 0;
                    if (!z) nonzero.fetch_add(1);
                }
            });
        for (auto& th : readers) th.join();
        balloon_bad = nonzero.load();
        // Deflate and reuse: the guest writes there again; it must stick.
        std::memset(at, 0x5a, kPage);
        if (at[kPage - 1] != 0x5a) ++balloon_bad;
        // Outside the balloon, memory is untouched by it.
        for (const Region& rr : regions)
            for (uint64_t o = 0; o < rr.size; o += kPage) {
                uint8_t* p = rr.base + o;
                if (p >= at && p < at + len) continue;
                if (std::memcmp(p, image.data() + rr.offset + o, kPage) != 0) ++bad;
            }
    }

    std::vector<uint32_t> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) { return all.empty() ? 0u : all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))]; };
    double touch_s = (t_touched - t0) / 1e9;
    nlohmann::json out = {{"pages", pages.size()},
                          {"written_pages", writes.load()},
                          {"threads", threads},
                          {"touch_ns", t_touched - t0},
                          {"handshake_to_touched_ns", t_touched - t_handshake},
                          {"pages_per_s", touch_s > 0 ? static_cast<uint64_t>(pages.size() / touch_s) : 0},
                          {"touch_p50_ns", pct(0.5)},
                          {"touch_p90_ns", pct(0.9)},
                          {"touch_p99_ns", pct(0.99)},
                          {"touch_max_ns", all.empty() ? 0u : all.back()},
                          {"mismatched_pages", bad},
                          {"balloon_pages", balloon_pages},
                          {"balloon_nonzero_pages", balloon_bad}};
    if (json) std::printf("%s\n", out.dump().c_str());
    else std::printf("fcclient: %zu pages in %.1f ms (%.0f pages/s), p50 %u ns, p99 %u ns; mismatched %llu; balloon %llu pages, %llu non-zero\n",
                     pages.size(), touch_s * 1e3, pages.size() / touch_s, pct(0.5), pct(0.99),
                     static_cast<unsigned long long>(bad), static_cast<unsigned long long>(balloon_pages),
                     static_cast<unsigned long long>(balloon_bad));
    return bad == 0 && balloon_bad == 0 ? 0 : 1;
}

// SPDX-License-Identifier: Apache-2.0
// libsnaprestore.so: snap-restore --exec puts this library into the VMM with LD_PRELOAD.
// It interposes mmap(): when the VMM maps the image (recognised by the device and inode of
// the descriptor, so any open/openat/dup path works), the VMM's own private mapping is made
// as asked and then the strategy's plan (common/restore/plan.hpp) is laid over it before
// mmap() returns — so the eager work (copies) is done before the VMM can run the guest.
// Every other mapping passes through untouched. Files are only ever opened read-only and
// mapped MAP_PRIVATE: the image and the parts are never written.
//
// Environment (set by snap-restore, removed here so that the VMM's children do not load us):
//   SNAPRESTORE_PLAN=FILE     the encoded plan
//   SNAPRESTORE_IMAGE=DEV:INO the image's identity (decimal st_dev, st_ino)
//   SNAPRESTORE_REPORT=FILE   where the JSON report goes (after the plan is applied, and at exit)
//   SNAPRESTORE_LIB=PATH      this library's path, to strip from LD_PRELOAD
//   SNAPRESTORE_UFFD=SOCKET   for plans served over userfaultfd (plan.demand: reap, tiered,
//                             and --record): the image mapping is replaced by the plan's base
//                             (one MAP_PRIVATE mapping of a layout file, or anonymous memory),
//                             registered with a userfaultfd (MISSING; WP too when recording)
//                             and handed to snap-restore on SOCKET exactly as Firecracker hands
//                             its userfaultfd to a UFFD handler (one JSON array of regions +
//                             the descriptor as SCM_RIGHTS). snap-restore installs the eager
//                             pages and answers with one byte; only then does mmap() return,
//                             so the VMM cannot run the guest before its hot pages are there
//                             (SNAPRESTORE_OVERLAP=1, --overlap: mmap() returns at once, and a
//                             touch of a page not installed yet waits for it on the userfaultfd).
//                             snap-restore then serves every other first touch. A thread
//                             here watches the socket: if snap-restore dies, the VMM is
//                             stopped (exit 1) rather than left hanging on a fault nobody
//                             serves. Only one mapping of the image is supported in this mode.
// Errors print one line "snap-restore: error: …" and end the VMM with exit code 1: a VMM
// must not run a guest on wrong memory.
#include "common/restore/plan.hpp"
#include "common/sys/hugetlbfs.hpp"
#include "common/uffd/wire.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace {

using snap::restore::MappingPlan;
using snap::restore::OpKind;

struct State {
    bool active = false;
    dev_t dev = 0;
    ino_t ino = 0;
    std::string report_path;
    std::string uffd_socket;  // uffd mode: where snap-restore's fault server listens
    bool record = false;      // snap-restore --record: register write-protect too
    bool overlap = false;     // snap-restore --overlap: mmap() returns before the eager installs are done
    MappingPlan plan;
    std::mutex mu;
    nlohmann::json report = nlohmann::json::object();
    uint64_t start_ns = 0;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> prefetch_pages{0}, prefetch_ns{0}, drain_pages{0}, drain_ns{0};
    std::atomic<bool> prefetch_done{false}, drain_done{false};
    int mapped_count = 0;
    uintptr_t guest_addr = 0;  // the image mapping (guest memory), once mapped
    size_t guest_len = 0;
};
State* g = nullptr;
thread_local bool t_inside = false;

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void* real_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return r == -1 ? MAP_FAILED : reinterpret_cast<void*>(r);
}

void write_all(int fd, const char* p, size_t n) {
    while (n) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= size_t(w);
    }
}

// The smallest page size backing [addr, addr+len) in this process (KernelPageSize of every
// VMA overlapping it, /proc/self/smaps), 0 if unknown: 2 MiB means the guest memory is all huge.
uint64_t smallest_page_bytes(uintptr_t addr, size_t len) {
    FILE* f = std::fopen("/proc/self/smaps", "re");
    if (!f) return 0;
    char line[512];
    bool in = false;
    uint64_t smallest = 0;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long lo = 0, hi = 0;
        char dash = 0;
        if (std::sscanf(line, "%llx%c%llx ", &lo, &dash, &hi) == 3 && dash == '-') {
            in = lo < addr + len && hi > addr;
            continue;
        }
        unsigned long long kb = 0;
        if (in && std::sscanf(line, "KernelPageSize: %llu kB", &kb) == 1 && (smallest == 0 || kb * 1024 < smallest))
            smallest = kb * 1024;
    }
    std::fclose(f);
    return smallest;
}

void write_report() {
    if (!g || g->report_path.empty()) return;
    std::string text;
    const uint64_t guest_page = g->guest_len ? smallest_page_bytes(g->guest_addr, g->guest_len) : 0;
    {
        std::lock_guard<std::mutex> lk(g->mu);
        nlohmann::json& r = g->report;
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        r["vmm_minor_faults"] = ru.ru_minflt;
        r["vmm_major_faults"] = ru.ru_majflt;
        if (guest_page && r.contains("mapping")) r["mapping"]["kernel_page_size_bytes"] = guest_page;
        if (!g->plan.prefetch.empty())
            r["prefetch"] = {{"fetched_pages", g->prefetch_pages.load()}, {"elapsed_ns", g->prefetch_ns.load()}, {"done", g->prefetch_done.load()}};
        if (!g->plan.drain.empty())
            r["drain"] = {{"fetched_pages", g->drain_pages.load()}, {"elapsed_ns", g->drain_ns.load()}, {"done", g->drain_done.load()}};
        text = r.dump() + "\n";
    }
    static std::mutex file_mu;  // the report thread, die() and the destructor may all write it
    std::lock_guard<std::mutex> lk(file_mu);
    std::string tmp = g->report_path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    write_all(fd, text.data(), text.size());
    ::close(fd);
    ::rename(tmp.c_str(), g->report_path.c_str());
}

[[noreturn]] void die(const std::string& what) {
    std::string line = "snap-restore: error: " + what + "\n";
    write_all(2, line.data(), line.size());
    if (g) {
        {
            std::lock_guard<std::mutex> lk(g->mu);
            g->report["error"] = what;
        }
        write_report();
    }
    _exit(1);
}

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

uint64_t count_maps() {
    int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[65536];
    uint64_t lines = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) lines += buf[i] == '\n';
    }
    ::close(fd);
    return lines;
}

uint64_t max_map_count() {
    int fd = ::open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 65530;
    char buf[32] = {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    return n > 0 ? std::strtoull(buf, nullptr, 10) : 65530;
}

// Threads started when the library loads (the VMM's start), each waiting for one job: creating
// a process's first thread cost 150-430 µs here (its stack, TLS and clone; the high end measured
// inside mmap()), which would be on the restore's critical path. A job runs on a waiting thread; with none
// left, on a new one. Jobs: the report written after the plan is applied, the watcher of
// snap-restore's socket, the prefetch and drain, the in-place pages under --overlap.
class Standby {
public:
    void start(unsigned threads) {
        for (unsigned i = 0; i < threads; ++i) {
            pthread_t th;
            if (!spawn(&th, &Standby::loop, this)) break;
            std::lock_guard<std::mutex> lk(mu_);
            ++waiting_;
        }
    }
    void run(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (waiting_ > 0) {
                --waiting_;
                jobs_.push_back(std::move(job));
                cv_.notify_one();
                return;
            }
        }
        auto* j = new std::function<void()>(std::move(job));
        pthread_t th;
        if (!spawn(&th, [](void* p) -> void* {
                std::unique_ptr<std::function<void()>> own(static_cast<std::function<void()>*>(p));
                (*own)();
                return nullptr;
            }, j)) {
            delete j;
            die("cannot start a thread");
        }
    }

private:
    static bool spawn(pthread_t* th, void* (*fn)(void*), void* arg) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const bool ok = pthread_create(th, &attr, fn, arg) == 0;
        pthread_attr_destroy(&attr);
        return ok;
    }
    static void* loop(void* arg) {
        auto* self = static_cast<Standby*>(arg);
        // SCHED_BATCH: woken for a job, the thread does not preempt the VMM's thread that woke
        // it (on a busy CPU a woken normal thread runs first, and the VMM's mmap() would wait
        // for the job it meant to leave behind).
        sched_param sp{};
        pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
        std::function<void()> job;
        {
            std::unique_lock<std::mutex> lk(self->mu_);
            self->cv_.wait(lk, [&] { return !self->jobs_.empty(); });
            job = std::move(self->jobs_.front());
            self->jobs_.pop_front();
        }
        t_inside = true;  // a job's own mmap() calls are not the VMM's
        job();
        return nullptr;
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    unsigned waiting_ = 0;
};
Standby* g_standby = nullptr;

struct Background {
    std::vector<std::pair<char*, size_t>> spans;  // addresses to populate
    bool drain = false;
};

void* background_main(void* arg) {
    auto* b = static_cast<Background*>(arg);
    if (b->drain) {
        // COLD drain must not compete with the guest: idle priority.
        sched_param sp{};
        pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    }
    auto& pages = b->drain ? g->drain_pages : g->prefetch_pages;
    auto& ns = b->drain ? g->drain_ns : g->prefetch_ns;
    const uint64_t t0 = now_ns();
    const size_t ps = g->plan.page_size;
    for (auto& [addr, len] : b->spans) {
        if (g->stop.load(std::memory_order_relaxed)) break;
        // MADV_POPULATE_READ reads the file pages into the page cache and maps them (a
        // private mapping stays private: a later write still makes a copy).
        if (syscall(SYS_madvise, addr, len, MADV_POPULATE_READ) != 0 && errno != EINTR) {
            if (errno == ENOMEM || errno == EFAULT) break;  // the VMM unmapped guest memory (exiting)
        }
        pages += len / ps;
        ns = now_ns() - t0;
    }
    (b->drain ? g->drain_done : g->prefetch_done) = true;
    delete b;
    return nullptr;
}

void start_background(char* base, uint64_t first_page, uint64_t pages_in_map,
                      const std::vector<snap::restore::PageSpan>& spans, bool drain) {
    if (spans.empty()) return;
    auto* b = new Background;
    b->drain = drain;
    const uint64_t ps = g->plan.page_size;
    for (const auto& s : spans) {
        uint64_t a = std::max(s.first_page, first_page), e = std::min(s.first_page + s.pages, first_page + pages_in_map);
        if (a < e) b->spans.push_back({base + (a - first_page) * ps, (e - a) * ps});
    }
    g_standby->run([b] { background_main(b); });
}

// Lay the plan's ops over [base, base+npages pages) (image pages from `first` on): map ops
// MAP_PRIVATE from their file, anon and copy ops as anonymous memory, copy ops filled with
// pread from their pieces (huge plans: each copy op a 2 MiB region advised MADV_HUGEPAGE
// first, so that the first write allocates one huge page).
void lay_ops(char* base, uint64_t first, uint64_t npages, int prot, int flags, int image_fd, uint64_t ns[4],
             uint64_t& bytes_copied, uint64_t& n_ops) {
    const MappingPlan& plan = g->plan;
    const uint64_t ps = plan.page_size;
    std::vector<int> fds(plan.files.size(), -1);
    fds[0] = image_fd;
    auto fd_of = [&](int32_t f) {
        if (fds[f] < 0) {
            fds[f] = ::open(plan.files[f].path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fds[f] < 0) die(errno_text(plan.files[f].path, errno));
        }
        return fds[f];
    };
    struct Source {
        const char* data = nullptr;
        uint64_t size = 0;
    };
    std::vector<Source> maps(plan.files.size());
    auto map_of = [&](int32_t f) -> const Source& {
        if (!maps[f].data) {
            struct stat st;
            const int fd = fd_of(f);
            if (::fstat(fd, &st) != 0 || st.st_size <= 0) die(plan.files[f].path + ": cannot size the file");
            void* m = real_mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) die(errno_text("mmap " + plan.files[f].path, errno));
            maps[f] = {static_cast<const char*>(m), uint64_t(st.st_size)};
        }
        return maps[f];
    };
    const int keep = flags & MAP_NORESERVE;
    for (const auto& op : plan.ops) {
        const uint64_t a = std::max(op.first_page, first), e = std::min(op.first_page + op.pages, first + npages);
        if (a >= e) continue;
        const uint64_t t = now_ns();
        char* at = base + (a - first) * ps;
        const size_t bytes = (e - a) * ps;
        ++n_ops;
        if (op.kind == OpKind::map) {
            void* r = real_mmap(at, bytes, prot, MAP_PRIVATE | MAP_FIXED | keep, fd_of(op.file),
                                off_t(op.file_offset + (a - op.first_page) * ps));
            if (r == MAP_FAILED) die(errno_text("mmap " + plan.files[op.file].path, errno));
        } else {
            void* r = real_mmap(at, bytes, prot | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | keep, -1, 0);
            if (r == MAP_FAILED) die(errno_text("mmap anonymous", errno));
            if (plan.huge) (void)::madvise(at, bytes, MADV_HUGEPAGE);  // advice: 4 KiB pages are still right
            for (uint32_t k = 0; k < op.piece_count; ++k) {
                const auto& c = plan.pieces[op.piece_begin + k];
                const uint64_t pa = std::max(c.page, a), pe = std::min(c.page + c.pages, e);
                if (pa >= pe) continue;
                char* dst = base + (pa - first) * ps;
                const uint64_t n = (pe - pa) * ps, foff = c.file_offset + (pa - c.page) * ps;
                if (plan.huge) {
                    // Many short pieces: copy from a mapping of the file, no system call each.
                    const Source& src = map_of(c.file);
                    if (foff > src.size || n > src.size - foff) die(plan.files[c.file].path + ": shorter than the plan says");
                    std::memcpy(dst, src.data + foff, n);
                    bytes_copied += n;
                    continue;
                }
                uint64_t left = n, at_off = foff;
                const int fd = fd_of(c.file);
                while (left) {
                    ssize_t r = ::pread(fd, dst, left, off_t(at_off));
                    if (r < 0 && errno == EINTR) continue;
                    if (r < 0) die(errno_text("read " + plan.files[c.file].path, errno));
                    if (r == 0) die(plan.files[c.file].path + ": shorter than the plan says");
                    dst += r;
                    at_off += uint64_t(r);
                    left -= uint64_t(r);
                    bytes_copied += uint64_t(r);
                }
            }
            if (!(prot & PROT_WRITE) && ::mprotect(at, bytes, prot) != 0) die(errno_text("mprotect", errno));
        }
        ns[static_cast<int>(op.kind)] += now_ns() - t;
    }
    for (size_t i = 0; i < maps.size(); ++i)
        if (maps[i].data) ::munmap(const_cast<char*>(maps[i].data), maps[i].size);
    for (size_t i = 1; i < fds.size(); ++i)
        if (fds[i] >= 0) ::close(fds[i]);
}

// Lay the plan over the VMM's mapping [base, base+len) of image bytes [off, off+len).
void apply(char* base, size_t len, off_t off, int prot, int flags, int image_fd) {
    const MappingPlan& plan = g->plan;
    const uint64_t ps = plan.page_size;
    const uint64_t t0 = now_ns();
    if (off % ps || len % ps) die("the VMM maps the image at an offset or length that is not page aligned");
    const uint64_t first = uint64_t(off) / ps, npages = len / ps;
    const uint64_t maps_before = count_maps(), limit = max_map_count();
    if (maps_before + plan.mappings + 16 > limit)
        die("the " + std::string(snap::restore::strategy_name(plan.strategy)) + " plan needs " + std::to_string(plan.mappings) +
            " mappings; the VMM has " + std::to_string(maps_before) + " and vm.max_map_count is " + std::to_string(limit));

    uint64_t ns[4] = {}, bytes_copied = 0, n_ops = 0;
    lay_ops(base, first, npages, prot, flags, image_fd, ns, bytes_copied, n_ops);
    const uint64_t t1 = now_ns();
    {
        std::lock_guard<std::mutex> lk(g->mu);
        nlohmann::json& r = g->report;
        r["image_mapped"] = true;
        r["image_mappings"] = ++g->mapped_count;
        char addr[32];
        std::snprintf(addr, sizeof addr, "0x%llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(base)));
        r["mapping"] = {{"address", addr}, {"length_bytes", len}, {"offset_bytes", off}, {"shared", false}};
        g->guest_addr = reinterpret_cast<uintptr_t>(base);
        g->guest_len = len;
        r["applied_ops"] = n_ops;
        r["copied_bytes"] = bytes_copied;
        r["initial_mappings"] = maps_before;
        r["final_mappings"] = count_maps();
        r["max_mappings"] = limit;
        r["phases_ns"] = {{"anon", ns[1]}, {"copy", ns[2]}, {"map", ns[3]}, {"total", t1 - t0}};
        r["ready_ns"] = t1 - g->start_ns;  // from library load to the plan applied
    }
    g_standby->run(write_report);  // off the VMM's path (150 µs here: a file written and renamed)
    start_background(base, first, npages, plan.prefetch, false);
    start_background(base, first, npages, plan.drain, true);
}

struct Helper {  // huge regions and the in-place populate, while snap-restore installs
    char* base;
    uint64_t first, npages;
    int prot, flags;
    uint64_t ns[4] = {}, bytes_copied = 0, n_ops = 0, populated = 0, windows = 0, t_ops = 0, t_pop = 0;
};

// Map the in-place pages of the base (tiered's RO pages in the layout file) into the page
// table before the guest runs. One read of one in-place page per 64 KiB window: its fault
// maps every page the file holds in that window (fault-around skips the holes, which stay for
// userfaultfd). Measured on a sparse tmpfs file: 0.2-0.4 µs a page, against 0.55-1.6 for one
// MADV_POPULATE_READ per run (runs of 1-2 pages: the call is the cost). A page fault-around
// leaves out (a window cut by a page-table boundary) is mapped by its first touch, the same
// way. Only pages the file holds are read: a hole would fault to snap-restore.
struct InPlace {
    const volatile char* base;
    uint64_t first, page_size;
    std::vector<uint64_t> windows;  // the first in-place page of each window holding some
    uint64_t pages = 0;             // in-place pages in the mapping
    void touch() const {  // inside mmap(): a read each
        char sink = 0;
        for (uint64_t p : windows) sink ^= base[(p - first) * page_size];
        (void)sink;
    }
    // Behind the VMM's back (--overlap): the same fault through MADV_POPULATE_READ, which
    // fails (and ends the loop) where a read would be SIGSEGV if the VMM unmapped its memory.
    void populate() const {
        for (uint64_t p : windows)
            if (syscall(SYS_madvise, const_cast<char*>(base) + (p - first) * page_size, page_size, MADV_POPULATE_READ) != 0 &&
                (errno == ENOMEM || errno == EFAULT))
                break;
    }
};

InPlace in_place_windows(const Helper& h) {
    const MappingPlan& plan = g->plan;
    InPlace ip{h.base, h.first, plan.page_size, {}};
    if (plan.base != snap::restore::Base::file) return ip;
    constexpr uint64_t kWindow = 64 * 1024;  // fault_around_bytes, the kernel's default
    const uint64_t per = std::max<uint64_t>(1, kWindow / plan.page_size);
    for (const auto& sp : plan.in_place) {
        const uint64_t a = std::max(sp.first_page, h.first), e = std::min(sp.end_page(), h.first + h.npages);
        for (uint64_t p = a; p < e; p = (p / per + 1) * per) ip.windows.push_back(p);
        if (a < e) ip.pages += e - a;
    }
    std::sort(ip.windows.begin(), ip.windows.end());
    ip.windows.erase(std::unique(ip.windows.begin(), ip.windows.end(), [&](uint64_t x, uint64_t y) { return x / per == y / per; }),
                     ip.windows.end());
    return ip;
}

// The preload's share of the eager phase while snap-restore installs: the huge regions (laid
// over the registered mapping: always before mmap() returns, or a guest write could land in
// the mapping they replace), then the in-place pages (with --overlap on their own thread:
// mapping a page the file holds is safe at any time).
void helper_main(Helper* h) {
    const uint64_t t0 = now_ns();
    lay_ops(h->base, h->first, h->npages, h->prot, h->flags, -1, h->ns, h->bytes_copied, h->n_ops);  // huge regions
    h->t_ops = now_ns() - t0;
    auto ip = std::make_shared<InPlace>(in_place_windows(*h));
    h->windows = ip->windows.size();
    h->populated = ip->pages;
    if (g->overlap && !ip->windows.empty()) {
        g_standby->run([ip] { ip->populate(); });
    } else {
        ip->touch();
    }
    h->t_pop = now_ns() - t0 - h->t_ops;
}

// The socket to snap-restore's fault server, watched: its end means the server is gone, and
// a guest whose memory nobody serves must not run on (it would hang, or worse).
void* watch_server(void* arg) {
    const int sock = static_cast<int>(reinterpret_cast<intptr_t>(arg));
    for (;;) {
        char b;
        ssize_t n = ::recv(sock, &b, 1, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        die("the fault server (snap-restore) is gone: stopping the VMM, whose guest memory nobody serves");
    }
    return nullptr;
}

// userfaultfd mode: replace the VMM's mapping [base, base+len) of image bytes [off, …) with the
// plan's base, register it with a new userfaultfd and hand the descriptor to snap-restore the
// way Firecracker does; wait until snap-restore has installed the eager pages. From then on
// every first touch of a page the base does not hold (the VMM's, or KVM's through GUP) is a
// fault that snap-restore resolves with the page's bytes.
// huge_bytes: the page size of the hugetlbfs file the VMM mapped (0: not hugetlbfs); the
// anonymous base is then huge pages of that size, so that guest memory stays huge (snap-restore
// refuses a plan of smaller pages, or one that lays anything else over it, before the VMM runs).
void apply_uffd(char* base, size_t len, off_t off, int prot, int flags, uint64_t huge_bytes) {
    const MappingPlan& plan = g->plan;
    const uint64_t ps = plan.page_size;
    const uint64_t t0 = now_ns();
    const bool record = g->record;
    if (off % ps || len % ps) die("the VMM maps the image at an offset or length that is not page aligned");
    if (g->mapped_count > 0)
        die("the VMM maps the image a second time: userfaultfd restores (reap, tiered, --record) handle one mapping of the image");
    const int keep = flags & MAP_NORESERVE;
    void* r;
    if (plan.base == snap::restore::Base::file) {
        const std::string& path = plan.files[plan.base_file].path;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) die(errno_text(path, errno));
        r = real_mmap(base, len, prot, MAP_PRIVATE | MAP_FIXED | keep, fd, off);
        ::close(fd);
        if (r == MAP_FAILED) die(errno_text("mmap " + path, errno));
    } else {
        // Pages of the plan's size only: a plan of smaller pages onto huge memory is refused by
        // snap-restore before the VMM runs, except for --record, which traces 4 KiB touches in
        // 4 KiB anonymous memory.
        const int huge = huge_bytes && huge_bytes == ps ? MAP_HUGETLB | (__builtin_ctzll(huge_bytes) << MAP_HUGE_SHIFT) : 0;
        r = real_mmap(base, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | keep | huge, -1, 0);
        if (r == MAP_FAILED && huge)
            die(errno_text("mmap of " + std::to_string(len / huge_bytes) + " anonymous huge pages (MAP_HUGETLB) for the guest's memory", errno) +
                ": reserve them in /proc/sys/vm/nr_hugepages (the image's own huge pages stay in use)");
        if (r == MAP_FAILED) die(errno_text("mmap anonymous", errno));
    }
    const uint64_t t_map = now_ns();
    int ufd = snap::uffd::wire::open_userfaultfd(true);
    if (ufd < 0) die(errno_text("userfaultfd", -ufd) + " (root, or vm.unprivileged_userfaultfd=1)");
    // EVENT_REMOVE as Firecracker asks; THREAD_ID (recording) so that snap-restore can tell the
    // VMM's own faults from those KVM's async page-fault workers take on its behalf.
    uint64_t granted = 0;
    if (int rc = snap::uffd::wire::api(ufd, UFFD_FEATURE_EVENT_REMOVE | (record ? UFFD_FEATURE_THREAD_ID : 0), &granted); rc != 0)
        die(errno_text("UFFDIO_API", -rc));
    const uint64_t addr = reinterpret_cast<uintptr_t>(base);
    bool wp = false;
    if (record && snap::uffd::wire::register_range(ufd, addr, len, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, nullptr) == 0)
        wp = true;
    else if (int rc = snap::uffd::wire::register_range(ufd, addr, len, UFFDIO_REGISTER_MODE_MISSING, nullptr); rc != 0)
        die(errno_text(plan.base == snap::restore::Base::file ? "UFFDIO_REGISTER over " + plan.files[plan.base_file].path
                                                              : std::string("UFFDIO_REGISTER"),
                       -rc));
    // Firecracker's handshake: connect, one JSON array + the descriptor.
    nlohmann::json regions = nlohmann::json::array();
    regions.push_back({{"base_host_virt_addr", uint64_t(addr)}, {"size", uint64_t(len)}, {"offset", uint64_t(off)}, {"page_size", ps}});
    const int sock = snap::uffd::wire::send_handshake(g->uffd_socket, regions.dump(), ufd);
    if (sock < 0) die(errno_text("connect " + g->uffd_socket, -sock));
    const uint64_t t_sent = now_ns();
    // While snap-restore installs the eager pages (two threads), this thread lays the huge
    // regions and maps the in-place pages; then it waits for snap-restore's "ready". Only
    // then does mmap() return, so no guest access can see a page before it is there.
    Helper helper{base, uint64_t(off) / ps, len / ps, prot, flags};
    helper_main(&helper);
    const uint64_t t_helper = now_ns();
    // --overlap: return now; snap-restore installs while the VMM sets itself up, and a touch of
    // a page it has not installed yet waits for it (the mapping is registered: nothing is ever
    // read before it is there). The watcher thread takes the "ready" byte when it comes.
    if (!g->overlap)
        if (int rc = snap::uffd::wire::wait_ready(sock); rc != 0)
            die(rc == -EPIPE ? "snap-restore closed the fault server before the eager installs were done"
                             : errno_text("wait for snap-restore", -rc));
    const uint64_t t1 = now_ns();
    // The descriptor stays open here too: the VMM's faults wait on it, not read zeros.
    {
        std::lock_guard<std::mutex> lk(g->mu);
        nlohmann::json& rep = g->report;
        rep["image_mapped"] = true;
        rep["image_mappings"] = ++g->mapped_count;
        char a[32];
        std::snprintf(a, sizeof a, "0x%llx", static_cast<unsigned long long>(addr));
        rep["mapping"] = {{"address", a}, {"length_bytes", len}, {"offset_bytes", off}, {"shared", false}};
        g->guest_addr = addr;
        g->guest_len = len;
        rep["uffd"] = {{"socket", g->uffd_socket}, {"write_protect", wp}, {"early_return", g->overlap}};
        rep["base"] = snap::restore::base_name(plan.base);
        rep["applied_ops"] = helper.n_ops;
        rep["copied_bytes"] = helper.bytes_copied;
        rep["initial_mappings"] = 0;
        rep["final_mappings"] = 0;
        rep["populated_pages"] = helper.populated;
        rep["populate_faults"] = helper.windows;
        rep["phases_ns"] = {{"map", t_map - t0}, {"uffd", t_sent - t_map}, {"copy", helper.t_ops}, {"populate", helper.t_pop},
                            {"server_wait", t1 - t_helper}, {"eager", t1 - t_sent}, {"total", t1 - t0}};
        rep["ready_ns"] = t1 - g->start_ns;
    }
    // The report, then the watcher, on a thread started when the library loaded.
    g_standby->run([sock] {
        write_report();
        watch_server(reinterpret_cast<void*>(intptr_t(sock)));
    });
    const uint64_t npages = len / ps, first = uint64_t(off) / ps;
    start_background(base, first, npages, plan.prefetch, false);
    start_background(base, first, npages, plan.drain, true);
}

bool is_image(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return false;
    return S_ISREG(st.st_mode) && st.st_dev == g->dev && st.st_ino == g->ino;
}

void strip_env(const char* lib) {
    ::unsetenv("SNAPRESTORE_PLAN");
    ::unsetenv("SNAPRESTORE_IMAGE");
    ::unsetenv("SNAPRESTORE_REPORT");
    ::unsetenv("SNAPRESTORE_LIB");
    ::unsetenv("SNAPRESTORE_UFFD");
    ::unsetenv("SNAPRESTORE_RECORD");
    ::unsetenv("SNAPRESTORE_OVERLAP");
    const char* pre = std::getenv("LD_PRELOAD");
    if (!pre || !lib || !*lib) return;
    std::string in = pre, out, tok;
    auto flush = [&] {
        if (!tok.empty() && tok != lib) out += (out.empty() ? "" : " ") + tok;
        tok.clear();
    };
    for (char c : in) {
        if (c == ' ' || c == ':') flush();
        else tok += c;
    }
    flush();
    if (out.empty()) ::unsetenv("LD_PRELOAD");
    else ::setenv("LD_PRELOAD", out.c_str(), 1);
}

__attribute__((constructor)) void snaprestore_init() {
    const char* plan_path = std::getenv("SNAPRESTORE_PLAN");
    if (!plan_path) return;
    t_inside = true;
    g = new State;
    g->start_ns = now_ns();
    std::string plan_file = plan_path;
    const char* image = std::getenv("SNAPRESTORE_IMAGE");
    const char* report = std::getenv("SNAPRESTORE_REPORT");
    if (report) g->report_path = report;
    if (const char* u = std::getenv("SNAPRESTORE_UFFD")) g->uffd_socket = u;
    g->record = std::getenv("SNAPRESTORE_RECORD") != nullptr;
    g->overlap = std::getenv("SNAPRESTORE_OVERLAP") != nullptr;
    std::string lib = std::getenv("SNAPRESTORE_LIB") ? std::getenv("SNAPRESTORE_LIB") : "";
    strip_env(lib.c_str());
    unsigned long long dev = 0, ino = 0;
    if (!image || std::sscanf(image, "%llu:%llu", &dev, &ino) != 2) die("SNAPRESTORE_IMAGE is missing or malformed");
    g->dev = dev_t(dev);
    g->ino = ino_t(ino);
    int fd = ::open(plan_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(errno_text(plan_file, errno));
    std::vector<std::byte> bytes;
    std::byte buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(errno_text(plan_file, errno));
        if (n == 0) break;
        bytes.insert(bytes.end(), buf, buf + n);
    }
    ::close(fd);
    try {
        g->plan = snap::restore::decode(bytes, plan_file);
    } catch (const std::exception& e) {
        die(e.what());
    }
    if (g->plan.demand && g->uffd_socket.empty()) die("the plan is served over userfaultfd but SNAPRESTORE_UFFD is not set");
    g_standby = new Standby;
    g_standby->start(1 + !g->plan.prefetch.empty() + !g->plan.drain.empty() +
                     (g->overlap && g->plan.base == snap::restore::Base::file));
    // A VMM that forks (daemonizes) before mapping guest memory has no standby threads in the
    // child: there every job starts its own.
    pthread_atfork(nullptr, nullptr, [] { g_standby = new Standby; });
    g->report = {{"pid", getpid()}, {"strategy", snap::restore::strategy_name(g->plan.strategy)}, {"image_mapped", false},
                 {"image_mappings", 0}, {"plan_mappings", g->plan.mappings}};
    g->active = true;
    write_report();
    t_inside = false;
}

__attribute__((destructor)) void snaprestore_fini() {
    if (!g || !g->active) return;
    g->stop = true;
    write_report();
}

void* interpose_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!g || !g->active || fd < 0 || t_inside || (flags & MAP_ANONYMOUS) || !is_image(fd))
        return real_mmap(addr, len, prot, flags, fd, off);
    t_inside = true;
    if ((flags & MAP_TYPE) != MAP_PRIVATE)
        die("the VMM maps the image shared: its writes would reach the image (restore with share=off)");
    void* p = real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED) {
        try {
            if (g->plan.demand) apply_uffd(static_cast<char*>(p), len, off, prot, flags, snap::sys::hugetlbfs_page_bytes(fd));
            else apply(static_cast<char*>(p), len, off, prot, flags, fd);
        } catch (const std::exception& e) {
            die(e.what());
        }
    }
    t_inside = false;
    return p;
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
    return interpose_mmap(addr, len, prot, flags, fd, off);
}
__attribute__((visibility("default"))) void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
    return interpose_mmap(addr, len, prot, flags, fd, off);
}
}

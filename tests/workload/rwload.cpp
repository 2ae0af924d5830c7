// SPDX-License-Identifier: Apache-2.0
// rwload: a stand-in for a VMM restoring a snapshot. Maps IMAGE privately (like Firecracker's
// File backend and QEMU's share=off) and reads/writes a pseudo-random set of its pages in
// three phases: most touches, then touch-free work, then the last touches immediately before
// exiting — so that only a recorder's final scan at the exit can see those.
//   rwload IMAGE --seed S --reads N --writes M [--truth FILE] [--pause-ms MS]
//          [--exit-from-thread]
// --truth writes one line per touched page, sorted: "PAGE R|W PHASE" (W pages may have been
// read too). --exit-from-thread does phase 3 in a second thread that calls exit() while the
// main thread waits: exit_group() from a thread that is not the leader.
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

struct Plan {
    std::vector<uint64_t> reads, writes;  // in touch order
};

uint64_t g_state;
uint64_t next_random() {  // splitmix64
    uint64_t z = (g_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

volatile uint64_t g_sink;
unsigned char* g_base;
const Plan* g_plan;
const long kPage = 4096;

void touch(size_t from_frac_num, size_t to_frac_num, size_t den) {
    const Plan& p = *g_plan;
    size_t r0 = p.reads.size() * from_frac_num / den, r1 = p.reads.size() * to_frac_num / den;
    size_t w0 = p.writes.size() * from_frac_num / den, w1 = p.writes.size() * to_frac_num / den;
    uint64_t sum = 0;
    // Interleave reads and writes as a guest would.
    for (size_t i = r0, j = w0; i < r1 || j < w1;) {
        if (i < r1) {
            const volatile unsigned char* q = g_base + p.reads[i] * kPage + (p.reads[i] * 131) % kPage;
            sum += *q;
            ++i;
        }
        if (j < w1) {
            volatile unsigned char* q = g_base + p.writes[j] * kPage + (p.writes[j] * 71) % kPage;
            *q = static_cast<unsigned char>(*q + 1);
            ++j;
        }
    }
    g_sink = g_sink + sum;
}

void busy_work(long ms) {
    // Touch-free work: compute on a small private buffer, for ms milliseconds.
    timespec t0{}, t{};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t acc = 1;
    for (;;) {
        for (int i = 0; i < 100000; ++i) acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms) break;
    }
    g_sink = g_sink + acc;
}

void* final_thread(void*) {
    touch(3, 4, 4);
    std::exit(0);  // exit_group() from a thread that is not the leader
}

int usage() {
    std::fprintf(stderr,
                 "usage: rwload IMAGE --seed S --reads N --writes M [--truth FILE] [--pause-ms MS] "
                 "[--exit-from-thread]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string image = argv[1], truth;
    uint64_t seed = 1, reads = 1000, writes = 100;
    long pause_ms = 300;
    bool exit_from_thread = false;
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "--exit-from-thread") {
            exit_from_thread = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        std::string v = argv[++i];
        if (k == "--seed") seed = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--reads") reads = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--writes") writes = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--truth") truth = v;
        else if (k == "--pause-ms") pause_ms = std::strtol(v.c_str(), nullptr, 10);
        else return usage();
    }
    int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        std::perror(image.c_str());
        return 1;
    }
    struct stat st {};
    fstat(fd, &st);
    uint64_t pages = static_cast<uint64_t>(st.st_size) / kPage;
    if (reads + writes > pages) {
        std::fprintf(stderr, "rwload: %llu pages cannot hold %llu distinct touches\n", (unsigned long long)pages,
                     (unsigned long long)(reads + writes));
        return 2;
    }
    g_state = seed;
    std::unordered_set<uint64_t> chosen;
    Plan plan;
    while (plan.reads.size() < reads || plan.writes.size() < writes) {
        uint64_t p = next_random() % pages;
        if (!chosen.insert(p).second) continue;
        if (plan.reads.size() < reads && (plan.writes.size() >= writes || next_random() % (reads + writes) < reads))
            plan.reads.push_back(p);
        else
            plan.writes.push_back(p);
    }
    g_plan = &plan;
    if (!truth.empty()) {
        std::vector<std::pair<uint64_t, std::string>> lines;
        auto phase = [](size_t i, size_t n) { return i >= n * 3 / 4 ? 3 : 1; };
        for (size_t i = 0; i < plan.reads.size(); ++i)
            lines.push_back({plan.reads[i], " R " + std::to_string(phase(i, plan.reads.size()))});
        for (size_t i = 0; i < plan.writes.size(); ++i)
            lines.push_back({plan.writes[i], " W " + std::to_string(phase(i, plan.writes.size()))});
        std::sort(lines.begin(), lines.end());
        FILE* f = std::fopen(truth.c_str(), "w");
        if (!f) {
            std::perror(truth.c_str());
            return 1;
        }
        for (auto& [p, s] : lines) std::fprintf(f, "%llu%s\n", (unsigned long long)p, s.c_str());
        std::fclose(f);
    }
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        std::perror("mmap");
        return 1;
    }
    g_base = static_cast<unsigned char*>(m);
    touch(0, 3, 4);       // phase 1
    busy_work(pause_ms);  // phase 2: no touches of the image
    if (exit_from_thread) {
        pthread_t t;
        pthread_create(&t, nullptr, final_thread, nullptr);
        pause();  // killed by the thread's exit_group()
    }
    touch(3, 4, 4);  // phase 3, then straight out
    return 0;
}

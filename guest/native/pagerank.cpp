// SPDX-License-Identifier: Apache-2.0
// pagerank: PageRank of a random directed graph (FaaSnap's pagerank, which
// uses python-igraph).  Native because igraph's Debian build pulls libxml2
// and 31 MB of ICU data into the guest (see guest/README.md).  Same
// algorithm as igraph's PRPACK defaults: damping 0.85, dangling nodes
// spread uniformly, iterate to an L1 change below 1e-10.
//
// Serves the runner's native protocol: one input per line on stdin
// ("NODES:SEED"), one reply per line on stdout ("<us> <answer>"), where
// the answer is "<top node>-<its rank, 9 decimals>-<checksum>".
#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Lcg {
    uint64_t state;
    explicit Lcg(uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ull + 1) {}
    uint64_t next() {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return state >> 33;
    }
};

std::string pagerank(uint32_t nodes, uint64_t seed) {
    // Each node links to 1..8 others, biased towards low ids (a few hubs).
    Lcg rng(seed);
    std::vector<uint32_t> out_degree(nodes, 0);
    std::vector<std::pair<uint32_t, uint32_t>> edges;
    for (uint32_t v = 0; v < nodes; v++) {
        uint32_t k = 1 + rng.next() % 8;
        for (uint32_t j = 0; j < k; j++) {
            uint64_t r = rng.next() % nodes;
            uint32_t w = static_cast<uint32_t>((r * r) / nodes);
            if (w == v) continue;
            edges.emplace_back(v, w);
            out_degree[v]++;
        }
    }
    const double d = 0.85;
    std::vector<double> rank(nodes, 1.0 / nodes), next(nodes);
    for (int it = 0; it < 1000; it++) {
        double dangling = 0;
        for (uint32_t v = 0; v < nodes; v++)
            if (out_degree[v] == 0) dangling += rank[v];
        double base = (1.0 - d) / nodes + d * dangling / nodes;
        for (uint32_t v = 0; v < nodes; v++) next[v] = base;
        for (auto [v, w] : edges) next[w] += d * rank[v] / out_degree[v];
        double change = 0;
        for (uint32_t v = 0; v < nodes; v++) change += std::fabs(next[v] - rank[v]);
        rank.swap(next);
        if (change < 1e-10) break;
    }
    uint32_t top = 0;
    uint64_t sum = 0;
    for (uint32_t v = 0; v < nodes; v++) {
        if (rank[v] > rank[top]) top = v;
        sum = sum * 1000003u + static_cast<uint64_t>(std::llround(rank[v] * 1e12));
    }
    char buf[96];
    std::snprintf(buf, sizeof buf, "%u-%.9f-%016llx", top, rank[top],
                  static_cast<unsigned long long>(sum));
    return buf;
}

}  // namespace

int main() {
    // Keep freed memory: a later call then reuses the pages the warm-up
    // touched instead of faulting fresh ones in (each guest page fault is
    // emulated kernel code under PVM, ~7 ms).  32 MiB is glibc's maximum
    // mmap threshold.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    char line[256];
    while (std::fgets(line, sizeof line, stdin)) {
        unsigned nodes = 0;
        unsigned long long seed = 1;
        if (std::sscanf(line, "%u:%llu", &nodes, &seed) < 1 || nodes == 0) {
            std::printf("0 bad-input\n");
            std::fflush(stdout);
            continue;
        }
        auto t0 = std::chrono::steady_clock::now();
        std::string answer = pagerank(nodes, seed);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - t0).count();
        std::printf("%lld %s\n", static_cast<long long>(us), answer.c_str());
        std::fflush(stdout);
    }
    return 0;
}

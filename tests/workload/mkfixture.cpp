// mkfixture: make a test image and a matching loading set without a VM.
//   mkfixture IMAGE LOADSET [PAGES [SEED]]
// The image is runs (1-64 pages) of zero, cold, read and written pages; non-zero pages are
// half pseudo-random bytes, half repetitive text (so zstd has something to do). The loading
// set touches the read and written pages, and a few zero pages, in a shuffled first-touch
// order, with write bits. Deterministic for a given PAGES and SEED.
#include "common/hash.hpp"
#include "common/image.hpp"
#include "common/loadset.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    uint64_t below(uint64_t n) { return next() % n; }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: mkfixture IMAGE LOADSET [PAGES [SEED]]\n");
        return 2;
    }
    const uint64_t pages = argc > 3 ? std::strtoull(argv[3], nullptr, 0) : 4096;
    Rng rng{argc > 4 ? std::strtoull(argv[4], nullptr, 0) | 1 : 0x9e3779b97f4a7c15ull};
    const uint32_t ps = snap::kDefaultPageSize;

    // 0 zero, 1 cold, 2 read, 3 written; touched zero pages are marked 4 (read) / 5 (written).
    std::vector<uint8_t> kind(pages);
    for (uint64_t p = 0; p < pages;) {
        uint64_t len = 1 + rng.below(64);
        uint64_t r = rng.below(100);
        uint8_t k = r < 50 ? 0 : r < 75 ? 1 : r < 90 ? 2 : 3;
        for (uint64_t i = 0; i < len && p < pages; ++i, ++p) {
            kind[p] = k;
            if (k == 0 && rng.below(50) == 0) kind[p] = 4 + static_cast<uint8_t>(rng.below(2));
        }
    }

    FILE* img = std::fopen(argv[1], "wb");
    if (!img) {
        std::perror(argv[1]);
        return 1;
    }
    std::vector<unsigned char> page(ps);
    snap::hash::Xxh3Stream h;
    static const char text[] = "the quick brown fox jumps over the lazy dog; snapkit fixture page ";
    for (uint64_t p = 0; p < pages; ++p) {
        if (kind[p] == 0 || kind[p] >= 4) {
            std::memset(page.data(), 0, ps);
        } else if (rng.below(2)) {
            for (uint32_t i = 0; i < ps; i += 8) {
                uint64_t v = rng.next();
                std::memcpy(&page[i], &v, 8);
            }
        } else {
            for (uint32_t i = 0; i < ps; ++i) page[i] = static_cast<unsigned char>(text[(i + p) % (sizeof text - 1)]);
            std::snprintf(reinterpret_cast<char*>(page.data()), 32, "page %llu ", static_cast<unsigned long long>(p));
        }
        if (kind[p] >= 1 && kind[p] <= 3) page[ps - 1] = 0x5a;  // never all zero
        h.update(page.data(), ps);
        if (std::fwrite(page.data(), 1, ps, img) != ps) {
            std::perror(argv[1]);
            return 1;
        }
    }
    if (std::fclose(img) != 0) {
        std::perror(argv[1]);
        return 1;
    }

    snap::LoadingSet ls;
    ls.image = {pages * ps, ps, h.digest()};
    ls.method = "fixture";
    ls.knows_writes = true;
    ls.has_time = true;
    std::vector<uint64_t> touched;
    for (uint64_t p = 0; p < pages; ++p)
        if (kind[p] >= 2) touched.push_back(p);
    // Shuffle in blocks so that first-touch order is neither address order nor random pages.
    for (size_t i = touched.size(); i > 1; --i) std::swap(touched[i - 1], touched[rng.below(i)]);
    for (size_t i = 0; i < touched.size(); ++i) {
        uint64_t p = touched[i];
        uint8_t acc = (kind[p] == 3 || kind[p] == 5) ? (snap::kAccessRead | snap::kAccessWrite) : snap::kAccessRead;
        ls.touches.push_back({p, i * 1000, static_cast<uint32_t>(i), acc});
    }
    ls.meta["generator"] = "mkfixture";
    snap::write_loadset(ls, argv[2]);
    return 0;
}

// SPDX-License-Identifier: Apache-2.0
// mkfixture: make a test image and a matching loading set without a VM.
//   mkfixture IMAGE LOADSET [PAGES [SEED]] [--method M] [--zero-pct P] [--random-pct P] [--max-run N]
// The image is runs (1-N pages, N = 64) of zero, cold, read and written pages (P = 50 % zero,
// the rest cold, read and written 5:3:2); non-zero pages are P = 50 % pseudo-random bytes, the
// rest repetitive text (so zstd has something to do). The loading set touches the read and
// written pages, and a few zero pages, in a shuffled first-touch order, with write bits.
// Deterministic for given arguments: the same image bytes whatever the method.
// --variant V (V > 0) gives the non-zero pages among 8 pages picked by V bytes of their own and
// leaves every other page, and the loading set's pages and order, as without it: V = 1..N are N
// functions sharing all but a few pages (tests/cli/pool_refresh.sh).
//
// --method labels the loading set the way that recorder would write it (DESIGN.md §5), so that
// testdata/ has one of each without recording a live process, which is never deterministic:
//   fixture  (default) R/W, exact order, timestamps
//   mincore  no R/W (every touch a read), scan rounds, no clock
//   pagemap  R/W, scan rounds (16 first touches a round), round times, no clock
//   uffd     R/W, exact order, timestamps (1 us apart)
//   bpf      R/W, exact order, timestamps with jitter
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
    const char* usage =
        "usage: mkfixture IMAGE LOADSET [PAGES [SEED]] [--method fixture|mincore|pagemap|uffd|bpf]\n"
        "                 [--zero-pct P] [--random-pct P] [--max-run N] [--variant V] [--page-size BYTES]\n";
    std::vector<std::string> pos;
    std::string method = "fixture";
    uint64_t zero_pct = 50, random_pct = 50, max_run = 64, variant = 0, page_size = snap::kDefaultPageSize;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "mkfixture: %s needs a value\n%s", a.c_str(), usage);
                return 2;
            }
            std::string v = argv[++i];
            if (a == "--method") method = v;
            else if (a == "--zero-pct") zero_pct = std::strtoull(v.c_str(), nullptr, 10);
            else if (a == "--random-pct") random_pct = std::strtoull(v.c_str(), nullptr, 10);
            else if (a == "--max-run") max_run = std::strtoull(v.c_str(), nullptr, 10);
            else if (a == "--variant") variant = std::strtoull(v.c_str(), nullptr, 10);
            else if (a == "--page-size") page_size = std::strtoull(v.c_str(), nullptr, 10);
            else {
                std::fprintf(stderr, "mkfixture: unknown option %s\n%s", a.c_str(), usage);
                return 2;
            }
        } else {
            pos.push_back(a);
        }
    }
    const bool known = method == "fixture" || method == "mincore" || method == "pagemap" || method == "uffd" || method == "bpf";
    if (pos.size() < 2 || pos.size() > 4 || !known || zero_pct > 100 || random_pct > 100 || max_run == 0) {
        std::fprintf(stderr, "%s", usage);
        return 2;
    }
    const uint64_t pages = pos.size() > 2 ? std::strtoull(pos[2].c_str(), nullptr, 0) : 4096;
    Rng rng{pos.size() > 3 ? std::strtoull(pos[3].c_str(), nullptr, 0) | 1 : 0x9e3779b97f4a7c15ull};
    if (page_size != 4096 && page_size != 2u << 20) {
        std::fprintf(stderr, "mkfixture: --page-size is 4096 or 2097152\n");
        return 2;
    }
    const uint32_t ps = static_cast<uint32_t>(page_size);
    const char* image_path = pos[0].c_str();
    const char* loadset_path = pos[1].c_str();
    // The non-zero share splits cold:read:written 5:3:2 (with the default 50 %: 50/75/90).
    const uint64_t cold_end = zero_pct + (100 - zero_pct) / 2, read_end = zero_pct + (100 - zero_pct) * 8 / 10;

    // 0 zero, 1 cold, 2 read, 3 written; touched zero pages are marked 4 (read) / 5 (written).
    std::vector<uint8_t> kind(pages);
    for (uint64_t p = 0; p < pages;) {
        uint64_t len = 1 + rng.below(max_run);
        uint64_t r = rng.below(100);
        uint8_t k = r < zero_pct ? 0 : r < cold_end ? 1 : r < read_end ? 2 : 3;
        for (uint64_t i = 0; i < len && p < pages; ++i, ++p) {
            kind[p] = k;
            if (k == 0 && rng.below(50) == 0) kind[p] = 4 + static_cast<uint8_t>(rng.below(2));
        }
    }

    FILE* img = std::fopen(image_path, "wb");
    if (!img) {
        std::perror(image_path);
        return 1;
    }
    std::vector<unsigned char> page(ps);
    snap::hash::Xxh3Stream h;
    static const char text[] = "the quick brown fox jumps over the lazy dog; snapkit fixture page ";
    for (uint64_t p = 0; p < pages; ++p) {
        if (kind[p] == 0 || kind[p] >= 4) {
            std::memset(page.data(), 0, ps);
        } else if (random_pct == 50 ? rng.below(2) != 0 : rng.below(100) < random_pct) {  // below(2): the old bytes
            for (uint32_t i = 0; i < ps; i += 8) {
                uint64_t v = rng.next();
                std::memcpy(&page[i], &v, 8);
            }
        } else {
            for (uint32_t i = 0; i < ps; ++i) page[i] = static_cast<unsigned char>(text[(i + p) % (sizeof text - 1)]);
            std::snprintf(reinterpret_cast<char*>(page.data()), 32, "page %llu ", static_cast<unsigned long long>(p));
        }
        if (variant != 0 && kind[p] >= 1 && kind[p] <= 3) {
            // Apart from rng: the pages of the base image and the loading set stay as they were.
            bool picked = false;
            for (uint64_t j = 0; j < 8; ++j) picked |= p == (variant * 7919 + j * (pages / 8 + 13)) % pages;
            if (picked) {
                Rng own{(variant << 32 ^ p) * 0x9e3779b97f4a7c15ull | 1};
                for (uint32_t i = 0; i < ps; i += 8) {
                    uint64_t v = own.next();
                    std::memcpy(&page[i], &v, 8);
                }
            }
        }
        if (kind[p] >= 1 && kind[p] <= 3) page[ps - 1] = 0x5a;  // never all zero
        h.update(page.data(), ps);
        if (std::fwrite(page.data(), 1, ps, img) != ps) {
            std::perror(image_path);
            return 1;
        }
    }
    if (std::fclose(img) != 0) {
        std::perror(image_path);
        return 1;
    }

    snap::LoadingSet ls;
    ls.image = {pages * ps, ps, h.digest()};
    ls.method = method;
    ls.knows_writes = method != "mincore";
    ls.has_time = method == "fixture" || method == "uffd" || method == "bpf";
    const bool rounds = method == "mincore" || method == "pagemap";
    constexpr uint64_t kTouchesPerRound = 16, kRoundNs = 1000000;
    std::vector<uint64_t> touched;
    for (uint64_t p = 0; p < pages; ++p)
        if (kind[p] >= 2) touched.push_back(p);
    // Shuffle in blocks so that first-touch order is neither address order nor random pages.
    for (size_t i = touched.size(); i > 1; --i) std::swap(touched[i - 1], touched[rng.below(i)]);
    for (size_t i = 0; i < touched.size(); ++i) {
        uint64_t p = touched[i];
        uint8_t acc = (kind[p] == 3 || kind[p] == 5) ? (snap::kAccessRead | snap::kAccessWrite) : snap::kAccessRead;
        if (!ls.knows_writes) acc = snap::kAccessRead;
        uint64_t time_ns = i * 1000;
        uint32_t rank = static_cast<uint32_t>(i);
        if (rounds) {
            rank = static_cast<uint32_t>(i / kTouchesPerRound);
            time_ns = (rank + 1) * kRoundNs;
        } else if (method == "bpf") {
            time_ns += rng.below(1000);  // still increasing: events are timestamped, not evenly spaced
        }
        ls.touches.push_back({p, time_ns, rank, acc});
    }
    ls.meta["generator"] = "mkfixture";
    if (method != "fixture") {
        ls.meta["method"] = method;
        ls.meta["limitations"] = nlohmann::json::array({"synthetic: made by mkfixture, not recorded from a process"});
    }
    ls.normalize();  // orders pages of one scan round by address, as the recorders do
    snap::write_loadset(ls, loadset_path);
    return 0;
}

// SPDX-License-Identifier: Apache-2.0
// Fuzz target for every artifact reader: whatever the bytes, a reader either accepts the file
// or throws BadInput — never crashes, hangs, over-allocates or throws anything else.
//
// Mutations are *resealed* (reseal.hpp: chunk checksums, header checksum, trailer digest
// recomputed) so that they get past the checksums to the decoders behind them; a share of
// them is left unsealed so that the checksum checks stay covered too.
//
// Built three ways:
//  - a plain program (ctest `fuzz-readers`): deterministic mutations of built-in seeds,
//    `snap-fuzz-readers N`; `snap-fuzz-readers --write-seeds DIR` writes the seeds as a corpus;
//  - with clang -fsanitize=fuzzer (-DSNAPKIT_LIBFUZZER=ON), one libFuzzer binary per reader
//    (SNAPKIT_FUZZ_READER = 1 loading set, 2 split, 3 placed) and one for all (0), with a
//    custom mutator that reseals; tests/fuzz/run_libfuzzer.sh runs each for a bounded time.
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/loadset.hpp"
#include "common/hash.hpp"
#include "common/placed.hpp"
#include "common/pool/chunk.hpp"
#include "common/split.hpp"
#include "common/tier.hpp"
#include "reseal.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef SNAPKIT_FUZZ_READER
#define SNAPKIT_FUZZ_READER 0  // all readers
#endif

namespace {

// The input as a file the readers can open by name, without touching the disk: a memfd,
// named through /proc/self/fd.
class MemFile {
public:
    MemFile() {
        fd_ = memfd_create("snapkit-fuzz", MFD_CLOEXEC);
        if (fd_ < 0) std::abort();
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    const std::string& put(const uint8_t* data, size_t size) {
        if (ftruncate(fd_, 0) < 0 || pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
        return path_;
    }

private:
    int fd_ = -1;
    std::string path_;
};

// Returns how many readers accepted the input.
int try_readers(const uint8_t* data, size_t size) {
    static MemFile file;
    const std::string& path = file.put(data, size);
    int accepted = 0;
    if (SNAPKIT_FUZZ_READER == 0 || SNAPKIT_FUZZ_READER == 1) {
        try {
            snap::read_loadset(path);
            ++accepted;
        } catch (const snap::BadInput&) {
        }
    }
    if (SNAPKIT_FUZZ_READER == 0 || SNAPKIT_FUZZ_READER == 2) {
        try {
            snap::SplitReader s(path);
            s.verify_data();
            for (auto& e : s.plan().extents) (void)s.extent_data(e);
            for (auto& r : s.plan().runs) (void)s.class_of(r.start_page);
            ++accepted;
        } catch (const snap::BadInput&) {
        }
    }
    if (SNAPKIT_FUZZ_READER == 0 || SNAPKIT_FUZZ_READER == 3) {
        try {
            snap::placed::PlacedReader p(path);
            (void)snap::placed::describe_placed(p).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // as cli::print_report prints it
            (void)snap::placed::text_placed(p);
            ++accepted;
        } catch (const snap::BadInput&) {
        }
    }
    return accepted;
}

std::vector<uint8_t> slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The seeds: one valid artifact of each kind, built here with the library's own writers.
// Kept in this one function so that other seed sources (testdata/) merge in easily.
[[maybe_unused]] std::vector<std::vector<uint8_t>> make_seeds(const std::string& dir) {
    const uint64_t pages = 16;  // small: the split seed stays under libFuzzer's -max_len
    std::vector<char> img(pages * 4096, 0);
    for (uint64_t p = 0; p < pages; p += 2) std::memset(&img[p * 4096], static_cast<int>(p + 1), 4096);
    {
        std::ofstream f(dir + "/img", std::ios::binary);
        f.write(img.data(), static_cast<std::streamsize>(img.size()));
    }
    snap::Image image(dir + "/img");
    snap::LoadingSet ls;
    ls.image = image.identity();
    ls.method = "pagemap";
    ls.knows_writes = true;
    for (uint64_t p = 0; p < pages; p += 3)
        ls.touches.push_back({p, p * 10, static_cast<uint32_t>(p), p % 2 ? snap::kAccessWrite : snap::kAccessRead});
    ls.normalize();
    snap::write_loadset(ls, dir + "/seed.ls");
    auto plan = snap::plan_split(image, ls, {});
    snap::write_split(image, plan, dir + "/seed.split", 1);
    // A placed artifact with a compressed part (SEEK frames) and an uncompressed one.
    snap::SplitReader split(dir + "/seed.split");
    snap::placed::PlaceRequest req;
    auto t = snap::tier::parse_tier("file:" + dir);
    snap::tier::resolve_location(t, dir);
    req.tiers.push_back(t);
    auto d = snap::tier::parse_tier("dram");
    snap::tier::resolve_location(d, dir);
    req.tiers.push_back(d);
    req.fixed[static_cast<int>(snap::PageClass::cold)] = 0;
    req.fixed[static_cast<int>(snap::PageClass::rw)] = 1;
    req.fixed[static_cast<int>(snap::PageClass::ro)] = 1;
    req.compress = true;
    req.frame_bytes = 16384;
    snap::placed::place(split, req, dir + "/seed.placed");
    // And one with a pool part (tier kind pool, PCHK chunk table), written without a server:
    // the reader never contacts the pool.
    {
        snap::placed::PlacedReader pr(dir + "/seed.placed");
        snap::placed::Manifest m = pr.manifest();
        snap::tier::TierSpec pool;
        pool.kind = snap::tier::TierKind::pool;
        pool.location = "redis://127.0.0.1:6379,127.0.0.1:6380/fuzz";
        m.tiers.push_back(pool);
        for (auto& part : m.parts) {
            if (part.cls != snap::PageClass::cold) continue;
            part.tier = static_cast<uint32_t>(m.tiers.size() - 1);
            part.compression = snap::placed::Compression::chunks;
            part.frame_bytes = 16384;
            part.frames.clear();
            part.offset = 0;
            part.path = pool.location + "#" + snap::hash::to_hex(part.digest) + ".cold";
            part.chunks.clear();
            part.stored_bytes = 0;
            uint64_t n = 0;
            for (uint32_t len : snap::pool::cut_part(pr.plan(), part.cls, part.frame_bytes)) {
                part.chunks.push_back({{n, ~n}, len, len / 2 + 8});
                part.stored_bytes += len / 2 + 8;
                ++n;
            }
        }
        snap::placed::write_manifest(pr.plan(), m, pr.parent_digest(), dir + "/seed-pool.placed");
    }
    std::vector<std::vector<uint8_t>> seeds;
    for (const char* name : {"/seed.ls", "/seed.split", "/seed.placed", "/seed-pool.placed"}) seeds.push_back(slurp(dir + name));
#ifdef SNAPKIT_TESTDATA_DIR
    // And testdata/'s artifacts (a loading set of each method, a split, a placed manifest with
    // a compressed part), in name order so that every run is the same.
    std::vector<std::filesystem::path> names;
    std::error_code ec;
    const std::filesystem::path td = SNAPKIT_TESTDATA_DIR;
    for (const auto& sub : {td, td / "placed"})
        for (const auto& e : std::filesystem::directory_iterator(sub, ec)) {
            const auto ext = e.path().extension();
            if (e.is_regular_file() && (ext == ".ls" || ext == ".split" || ext == ".placed")) names.push_back(e.path());
        }
    std::sort(names.begin(), names.end());
    if (names.size() < 3) throw std::runtime_error("no seed artifacts in " + td.string());
    for (const auto& n : names) seeds.push_back(slurp(n.string()));
#endif
    return seeds;
}

// Deterministic mutations for the plain program: bit flips, truncation, an extreme 64-bit
// value in the header, chunk table or a chunk (where counts and sizes live), random blocks.
[[maybe_unused]] void mutate(std::vector<uint8_t>& d, std::mt19937_64& rng) {
    if (d.size() < 8) {  // too short for the word-sized mutations below
        d.push_back(static_cast<uint8_t>(rng()));
        return;
    }
    switch (rng() % 5) {
        case 0:  // bit flips
            for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) d[rng() % d.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
        case 1:  // truncation
            d.resize(rng() % d.size());
            break;
        case 2: {  // an extreme value in the header or chunk table
            size_t limit = std::min<size_t>(d.size(), 64 + 32 * 8);
            size_t off = (rng() % (limit / 8)) * 8;
            uint64_t v = (rng() % 2) ? ~uint64_t{0} : (uint64_t{1} << (rng() % 64));
            if (off + 8 <= d.size()) std::memcpy(&d[off], &v, 8);
            break;
        }
        case 3: {  // an extreme or off-by-one value anywhere (chunk contents: IMGI sizes, runs)
            size_t off = (rng() % (d.size() / 4)) * 4;
            uint64_t choices[] = {~uint64_t{0}, uint64_t{1} << 46, uint64_t{1} << 40, 0, 1, 4095, 4097};
            uint64_t v = choices[rng() % std::size(choices)];
            size_t n = rng() % 2 ? 8 : 4;
            if (off + n <= d.size()) std::memcpy(&d[off], &v, n);
            else if (off < d.size()) d[off] ^= 0xff;
            break;
        }
        default:  // random bytes appended or a random block overwritten
            if (rng() % 2) d.resize(d.size() + rng() % 4096, static_cast<uint8_t>(rng()));
            else {
                size_t off = rng() % d.size();
                for (size_t k = off; k < std::min(d.size(), off + 64); ++k) d[k] = static_cast<uint8_t>(rng());
            }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try_readers(data, size);
    return 0;
}

#ifdef SNAPKIT_LIBFUZZER
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// libFuzzer's mutations, then resealed (7 times in 8) so that they reach the decoders.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 8 == 0) return size;
    std::vector<uint8_t> d(data, data + size);
    snap::fuzz::reseal(d, /*fix_size=*/seed % 16 != 1);
    std::memcpy(data, d.data(), std::min(d.size(), max_size));
    return std::min(d.size(), max_size);
}
#else
int main(int argc, char** argv) {
    char tmpl[] = "/tmp/snapkit-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    const std::string dir = tmpl;
    std::vector<std::vector<uint8_t>> seeds;
    try {
        seeds = make_seeds(dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "FAIL: seeds: %s\n", e.what());
        return 1;
    }
    auto cleanup = [&] {
        std::string rm = "rm -rf '" + dir + "'";
        return std::system(rm.c_str()) == 0;
    };
    if (argc > 2 && std::string(argv[1]) == "--write-seeds") {
        const std::string out = argv[2];
        const char* names[] = {"seed-loadset", "seed-split", "seed-placed", "seed-placed-pool"};
        for (size_t i = 0; i < seeds.size(); ++i) {
            // the built-in four by kind, then testdata/'s artifacts by number
            const std::string name = i < 4 ? names[i] : "seed-testdata-" + std::to_string(i - 4);
            std::ofstream f(out + "/" + name, std::ios::binary);
            f.write(reinterpret_cast<const char*>(seeds[i].data()), static_cast<std::streamsize>(seeds[i].size()));
        }
        return cleanup() ? 0 : 1;
    }
    const int iterations = argc > 1 ? std::atoi(argv[1]) : 4000;
    for (auto& s : seeds)
        if (try_readers(s.data(), s.size()) != 1) {
            std::fprintf(stderr, "FAIL: a valid seed was not accepted by exactly one reader\n");
            return 1;
        }
    std::mt19937_64 rng(20261124);
    int accepted = 0, resealed = 0;
    for (int i = 0; i < iterations; ++i) {
        std::vector<uint8_t> d = seeds[i % seeds.size()];
        for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) mutate(d, rng);
        if (rng() % 4) {  // three in four reach the decoders
            snap::fuzz::reseal(d, rng() % 8 != 0);
            ++resealed;
        }
        accepted += try_readers(d.data(), d.size());
    }
    if (!cleanup()) return 1;
    std::printf("ok: %d mutated artifacts (%d resealed), %d accepted, no crash\n", iterations, resealed, accepted);
    return 0;
}
#endif

// SPDX-License-Identifier: Apache-2.0
// Fuzz target for every artifact reader: whatever the bytes, a reader either accepts the file
// or throws BadInput — never crashes, hangs, over-allocates or throws anything else.
// Built two ways: with clang -fsanitize=fuzzer (-DSNAPKIT_LIBFUZZER) for coverage-guided
// fuzzing (testdata/ and testdata/placed/ are its seed corpus), and as a plain program (ctest)
// that mutates the valid artifacts of testdata/ deterministically.
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/loadset.hpp"
#include "common/split.hpp"
#if __has_include("common/placed.hpp")
#include "common/placed.hpp"
#define SNAPKIT_FUZZ_PLACED 1
#endif

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#ifndef SNAPKIT_TESTDATA_DIR
#define SNAPKIT_TESTDATA_DIR "testdata"
#endif

namespace {

std::string scratch_path() {
    static std::string p = "/tmp/snapkit-fuzz-" + std::to_string(getpid());
    return p;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Returns how many readers accepted the input.
int try_readers(const uint8_t* data, size_t size) {
    const std::string path = scratch_path();
    write_file(path, data, size);
    int accepted = 0;
    try {
        snap::read_loadset(path);
        ++accepted;
    } catch (const snap::BadInput&) {
    }
    try {
        snap::SplitReader s(path);
        s.verify_data();
        for (auto& e : s.plan().extents) (void)s.extent_data(e);
        ++accepted;
    } catch (const snap::BadInput&) {
    }
#ifdef SNAPKIT_FUZZ_PLACED
    try {
        snap::placed::PlacedReader p(path);
        ++accepted;
    } catch (const snap::BadInput&) {
    }
#endif
    return accepted;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try_readers(data, size);
    return 0;
}

#ifndef SNAPKIT_LIBFUZZER
// Seeds: the artifacts of testdata/ (every loading set, the split, the placed manifest), in
// name order so the run is the same everywhere. Each iteration flips bits, truncates, or
// overwrites a header/table field with an extreme value; then every reader runs.
//   snap-fuzz-readers [ITERATIONS [TESTDATA_DIR]]   (default dir: $SNAPKIT_TESTDATA, else the source tree's)
int main(int argc, char** argv) {
    const int iterations = argc > 1 ? std::atoi(argv[1]) : 4000;
    const char* env = std::getenv("SNAPKIT_TESTDATA");
    const std::filesystem::path testdata = argc > 2 ? argv[2] : env && *env ? env : SNAPKIT_TESTDATA_DIR;
    std::vector<std::filesystem::path> names;
    std::error_code ec;
    for (const auto& sub : {testdata, testdata / "placed"})
        for (const auto& e : std::filesystem::directory_iterator(sub, ec)) {
            const auto ext = e.path().extension();
            if (e.is_regular_file() && (ext == ".ls" || ext == ".split" || ext == ".placed")) names.push_back(e.path());
        }
    std::sort(names.begin(), names.end());
    if (names.size() < 3) {
        std::fprintf(stderr, "FAIL: no seed artifacts in %s (a loading set, a split and a placed manifest expected)\n",
                     testdata.c_str());
        return 1;
    }
    std::vector<std::vector<uint8_t>> seeds;
    for (const auto& name : names) {
        std::ifstream f(name, std::ios::binary);
        seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    for (size_t i = 0; i < seeds.size(); ++i)
        if (try_readers(seeds[i].data(), seeds[i].size()) != 1) {
            std::fprintf(stderr, "FAIL: a valid seed was not accepted by exactly one reader: %s\n", names[i].c_str());
            return 1;
        }
    std::mt19937_64 rng(20261124);
    int accepted = 0;
    for (int i = 0; i < iterations; ++i) {
        std::vector<uint8_t> d = seeds[i % seeds.size()];
        switch (rng() % 4) {
            case 0:  // bit flips
                for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) d[rng() % d.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
                break;
            case 1:  // truncation
                d.resize(rng() % d.size());
                break;
            case 2: {  // an extreme 64-bit value in the header or chunk table
                size_t limit = std::min<size_t>(d.size(), 64 + 32 * 8);
                size_t off = (rng() % (limit / 8)) * 8;
                uint64_t v = (rng() % 2) ? ~uint64_t{0} : (uint64_t{1} << (rng() % 64));
                if (off + 8 <= d.size()) std::memcpy(&d[off], &v, 8);
                break;
            }
            default:  // random bytes appended or a random block overwritten
                if (rng() % 2) d.resize(d.size() + rng() % 4096, static_cast<uint8_t>(rng()));
                else {
                    size_t off = rng() % d.size();
                    for (size_t k = off; k < std::min(d.size(), off + 64); ++k) d[k] = static_cast<uint8_t>(rng());
                }
        }
        accepted += try_readers(d.data(), d.size());
    }
    std::remove(scratch_path().c_str());
    std::printf("ok: %d mutated artifacts from %zu seeds, %d accepted (checksums catch the rest), no crash\n", iterations,
                seeds.size(), accepted);
    return 0;
}
#endif

// SPDX-License-Identifier: Apache-2.0
// Fuzz target for the one message a Firecracker peer sends snap-restore --serve: the JSON
// array of guest memory regions (common/uffd/firecracker.cpp, parse_firecracker_regions).
// Whatever the bytes, it returns regions that hold together (sizes and page sizes sane, no
// overlap: RegionMap accepts them) or throws ProtocolError — never crashes, hangs or throws
// anything else. The peer is untrusted: it may be any process that can reach the socket.
//
// A plain program (ctest `fuzz-regions`): structure-aware mutations (random region arrays
// with extreme, negative, fractional, string and nested values, missing and extra fields)
// and byte-level ones (flips, truncation, insertions) of valid messages. With clang and
// -DSNAPKIT_LIBFUZZER=ON also snap-fuzz-regions-libfuzzer (tests/fuzz/run_libfuzzer.sh).
#include "common/error.hpp"
#include "common/uffd/firecracker.hpp"
#include "common/uffd/server.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

void check(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<snap::uffd::Region> rs;
    try {
        rs = snap::uffd::parse_firecracker_regions(text);
    } catch (const snap::uffd::ProtocolError&) {
        return;
    }
    // Accepted: what the serve loop relies on.
    if (rs.empty()) std::abort();
    for (auto& r : rs)
        if (r.size_bytes == 0 || r.page_size < 4096 || (r.page_size & (r.page_size - 1)) != 0) std::abort();
    snap::uffd::RegionMap map(rs);  // must not throw for an accepted message
}

}  // namespace

#ifdef SNAPKIT_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check(data, size);
    return 0;
}
#else
namespace {
std::string number(std::mt19937_64& rng) {
    static const char* odd[] = {"-1", "0", "1e400", "-0", "1.5", "18446744073709551615", "18446744073709551616",
                                "9223372036854775808", "4096", "2097152", "4", "2048", "null", "true", "\"4096\"",
                                "[]", "{}", "1e3", "0x1000", "00"};
    switch (rng() % 4) {
        case 0: return odd[rng() % (sizeof odd / sizeof *odd)];
        case 1: return std::to_string(rng());
        case 2: return std::to_string((rng() % 64) << 12);
        default: return std::to_string(uint64_t{1} << (rng() % 64));
    }
}

std::string message(std::mt19937_64& rng) {
    static const char* fields[] = {"base_host_virt_addr", "size", "offset", "page_size", "page_size_kib", "extra"};
    std::string m = "[";
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
        if (i) m += ",";
        if (rng() % 16 == 0) {
            m += number(rng);
            continue;
        }
        m += "{";
        bool first = true;
        for (const char* f : fields) {
            if (rng() % 6 == 0) continue;  // missing
            if (!first) m += ",";
            first = false;
            m += std::string("\"") + f + "\":" + number(rng);
        }
        m += "}";
    }
    return m + "]";
}
}  // namespace

int main(int argc, char** argv) {
    const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
    std::mt19937_64 rng(20261201);
    const std::vector<std::string> valid = {
        R"([{"base_host_virt_addr":1073741824,"size":25165824,"offset":0,"page_size":4096},)"
        R"({"base_host_virt_addr":2147483648,"size":8388608,"offset":25165824,"page_size":4096}])",
        R"([{"base_host_virt_addr":4194304,"size":2097152,"offset":0,"page_size_kib":4096}])",
        R"([{"base_host_virt_addr":4194304,"size":4194304,"offset":0,"page_size_kib":2048}])"};
    for (auto& v : valid) {
        auto rs = snap::uffd::parse_firecracker_regions(v);
        if (rs.empty()) return 1;
    }
    int accepted = 0;
    for (int i = 0; i < iterations; ++i) {
        std::string m = i % 2 ? message(rng) : valid[rng() % valid.size()];
        for (int k = 0, n = static_cast<int>(rng() % 4); k < n; ++k) {
            if (m.empty()) break;
            size_t at = rng() % m.size();
            switch (rng() % 4) {
                case 0: m[at] = static_cast<char>(m[at] ^ (1u << (rng() % 8))); break;
                case 1: m.resize(at); break;
                case 2: m.insert(at, number(rng)); break;
                default: m.insert(at, std::string(rng() % 64, "[{\",:}]"[rng() % 7])); break;
            }
        }
        try {
            auto rs = snap::uffd::parse_firecracker_regions(m);
            ++accepted;
            for (auto& r : rs)
                if (r.size_bytes == 0 || r.page_size < 4096 || (r.page_size & (r.page_size - 1)) != 0) {
                    std::fprintf(stderr, "FAIL: accepted a bad region: %s\n", m.c_str());
                    return 1;
                }
            snap::uffd::RegionMap map(rs);
        } catch (const snap::uffd::ProtocolError&) {
        } catch (const std::exception& e) {
            std::fprintf(stderr, "FAIL: %s: %s\n", m.c_str(), e.what());
            return 1;
        }
    }
    std::printf("ok: %d region messages, %d accepted, no crash\n", iterations, accepted);
    return 0;
}
#endif

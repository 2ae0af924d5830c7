// SPDX-License-Identifier: Apache-2.0
// mkimage: write a deterministic test memory image: a given share of all-zero pages, the rest
// pseudo-random bytes, laid out in runs like a guest's RAM (zero runs between data runs).
//   mkimage OUT --mib N [--zero-pct P] [--seed S]
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    const char* usage = "usage: mkimage OUT --mib N [--zero-pct P] [--seed S]\n";
    if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::fputs(usage, stdout);
        return 0;
    }
    // OUT never starts with '-' (an option mistaken for the file name writes a 64 MiB "--mib").
    if (argc < 2 || argv[1][0] == '-' || argc % 2 != 0) {
        std::fputs(usage, stderr);
        return 2;
    }
    std::string out = argv[1];
    uint64_t mib = 64, zero_pct = 70, seed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        uint64_t v = std::strtoull(argv[i + 1], nullptr, 10);
        if (k == "--mib") mib = v;
        else if (k == "--zero-pct") zero_pct = v;
        else if (k == "--seed") seed = v;
        else {
            std::fprintf(stderr, "mkimage: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    auto next = [&] {  // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        return x * 0x2545f4914f6cdd1dULL;
    };
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        std::perror(out.c_str());
        return 1;
    }
    const uint64_t pages = mib * 256;
    std::vector<uint64_t> page(512);
    uint64_t p = 0;
    while (p < pages) {
        bool zero = next() % 100 < zero_pct;
        uint64_t run = 1 + next() % 64;  // runs of 1-64 pages
        for (uint64_t i = 0; i < run && p < pages; ++i, ++p) {
            if (zero) std::memset(page.data(), 0, 4096);
            else
                for (auto& w : page) w = next();
            if (::write(fd, page.data(), 4096) != 4096) {
                std::perror(out.c_str());
                return 1;
            }
        }
    }
    ::close(fd);
    return 0;
}

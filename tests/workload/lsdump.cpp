// lsdump: print a loading set one touched page a line, "PAGE R|W|RW RANK TIME_NS" (the format
// of `snap-stat --list`), for shell tests that must not depend on snap-stat.
//   lsdump LOADSET
#include "common/loadset.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: lsdump LOADSET\n");
        return 2;
    }
    try {
        snap::LoadingSet ls = snap::read_loadset(argv[1]);
        const char* acc[] = {"", "R", "W", "RW"};
        for (auto& t : ls.touches)
            std::printf("%llu %s %u %llu\n", (unsigned long long)t.page, acc[t.access & 3], t.rank,
                        (unsigned long long)t.time_ns);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lsdump: %s\n", e.what());
        return 3;
    }
    return 0;
}

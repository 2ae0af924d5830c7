// SPDX-License-Identifier: Apache-2.0
// Monotonic clock and a per-method tally of time spent scanning (the OVERHEAD numbers).
#pragma once
#include <time.h>

#include <algorithm>
#include <cstdint>

namespace snap::record {

inline uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct ScanClock {
    uint64_t total_ns = 0, max_ns = 0, count = 0;
};

class ScanTimer {
public:
    explicit ScanTimer(ScanClock& c) : c_(c), t0_(now_ns()) {}
    ~ScanTimer() {
        uint64_t d = now_ns() - t0_;
        c_.total_ns += d;
        c_.max_ns = std::max(c_.max_ns, d);
        ++c_.count;
    }

private:
    ScanClock& c_;
    uint64_t t0_;
};

}  // namespace snap::record

// SPDX-License-Identifier: Apache-2.0
// reassemble: rebuild the image from a placed artifact's parts (placed::materialize), for the
// round-trip tests until snap-restore --materialize exists.
//   reassemble PLACED OUT      exit 0 ok, 3 bad artifact or part (message names the file)
#include "common/error.hpp"
#include "common/placed.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: reassemble PLACED OUT\n");
        return 2;
    }
    try {
        snap::placed::PlacedReader r(argv[1]);
        auto res = snap::placed::materialize(r, argv[2]);
        std::printf("%llu bytes, %llu of page data, fingerprint %016llx\n", (unsigned long long)res.bytes,
                    (unsigned long long)res.data_bytes, (unsigned long long)res.fingerprint);
    } catch (const snap::Error& e) {
        std::fprintf(stderr, "reassemble: error: %s\n", e.what());
        return static_cast<int>(e.code());
    }
    return 0;
}

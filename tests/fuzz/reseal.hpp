// SPDX-License-Identifier: Apache-2.0
// Resealing: after a fuzzer (or a test) changes bytes of an artifact, recompute what the
// format checks first — each chunk's XXH3-64 in the chunk table, the header checksum, and the
// trailer digest over header and table (man/snapkit-formats.5, common/format/container.cpp) —
// so that the mutation reaches the decoders behind the checksums instead of dying at them.
// Header-only: the fuzz harness and tests/workload/mkhostile.cpp share it.
#pragma once
#include "common/format/container.hpp"
#include "common/hash.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace snap::fuzz {

inline void store_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint64_t load_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Reseal in place. fix_size: also set the header's file_size to the buffer's size (a mutation
// that grew or shrank the file then still passes the size check). Chunks whose extent lies
// outside the buffer keep their stored checksum (the reader refuses them anyway). Buffers too
// short for a header, or without the magic, are left alone.
inline void reseal(std::vector<uint8_t>& d, bool fix_size = true) {
    using namespace snap::format;
    if (d.size() < kHeaderBytes + kTrailerBytes || std::memcmp(d.data(), kMagic.data(), kMagic.size()) != 0) return;
    if (fix_size) store_u64(&d[40], d.size());
    const uint64_t count = load_u32(&d[28]);
    const uint64_t table_end = kHeaderBytes + count * kChunkEntryBytes;
    const uint64_t data_end = d.size() - kTrailerBytes;
    if (table_end <= data_end) {
        for (uint64_t i = 0; i < count; ++i) {
            uint8_t* e = &d[kHeaderBytes + i * kChunkEntryBytes];
            uint64_t off = load_u64(e + 8), len = load_u64(e + 16);
            if (off <= data_end && len <= data_end - off) store_u64(e + 24, hash::xxh3(&d[off], len));
        }
    }
    store_u64(&d[56], hash::xxh3(d.data(), 56));
    if (table_end <= data_end) {
        uint8_t* t = &d[d.size() - kTrailerBytes];
        std::memcpy(t, kTrailerMagic.data(), 8);
        store_u64(t + 8, hash::xxh3(d.data(), table_end));
    }
}

// Where chunk `type` starts in the buffer (its offset from the table), or SIZE_MAX.
inline size_t chunk_offset(const std::vector<uint8_t>& d, const char (&type)[5]) {
    using namespace snap::format;
    if (d.size() < kHeaderBytes) return SIZE_MAX;
    const uint64_t count = load_u32(&d[28]);
    for (uint64_t i = 0; i < count && kHeaderBytes + (i + 1) * kChunkEntryBytes <= d.size(); ++i) {
        const uint8_t* e = &d[kHeaderBytes + i * kChunkEntryBytes];
        if (std::memcmp(e, type, 4) == 0) {
            uint64_t off = load_u64(e + 8);
            return off < d.size() ? static_cast<size_t>(off) : SIZE_MAX;
        }
    }
    return SIZE_MAX;
}

}  // namespace snap::fuzz

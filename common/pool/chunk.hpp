// SPDX-License-Identifier: Apache-2.0
// Pool chunks (DESIGN.md §2, the pool tier): a part's page data cut into chunks, each named by
// the XXH3-128 of its uncompressed bytes, stored once in the pool however many snapshots hold
// it, zstd-compressed when that pays. Pure logic, no I/O: the names, the cut, and the value
// format (man/snapkit-formats.5, "POOL CHUNKS").
//
// The cut follows the image, not the part: a chunk never crosses an extent (a run of adjacent
// image pages of one class) and never crosses an image offset that is a multiple of the chunk
// size. So the same stretch of guest memory makes the same chunks in two snapshots, whatever
// the order their parts hold it in (RO and RW parts are in first-touch order, which differs
// between functions) — that is what deduplicates the kernel and the runtime across snapshots.
#pragma once
#include "common/split.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snap::pool {

struct ChunkId {
    uint64_t hi = 0, lo = 0;
    bool operator==(const ChunkId&) const = default;
    auto operator<=>(const ChunkId&) const = default;
};
ChunkId chunk_id(const void* data, size_t bytes) noexcept;  // XXH3-128
// 32 lower-case hex digits, high half first: what `xxhsum -H2` prints for the chunk's bytes.
std::string to_hex(const ChunkId& id);
bool from_hex(std::string_view text, ChunkId& id);

constexpr uint32_t kDefaultChunkBytes = 16 * 1024;
constexpr uint32_t kMaxChunkBytes = 4u << 20;

// Raw lengths (page multiples, in part order) of the chunks of class cls's part: the part's
// extents in data_page order, cut at extent ends and at image offsets that are multiples of
// chunk_bytes (itself a multiple of the page size).
std::vector<uint32_t> cut_part(const SplitPlan& plan, PageClass cls, uint32_t chunk_bytes);

// The value stored under a chunk's key: an 8-byte header ("SKC", codec byte 0 = raw or
// 1 = zstd, the raw length as u32 little-endian), then the bytes. zstd is used when it saves at
// least an eighth. `cctx` is a ZSTD_CCtx* the caller keeps (one per thread).
std::string encode_value(const std::byte* raw, uint32_t raw_bytes, int zstd_level, void* cctx);
// Decode a value into dst (raw_bytes long) and check it is the chunk `id`: header, codec,
// length, decompression and XXH3-128. On failure returns why (empty = good).
std::string decode_value(std::string_view value, const ChunkId& id, uint32_t raw_bytes, std::byte* dst, void* dctx);
constexpr size_t kValueHeaderBytes = 8;

}  // namespace snap::pool

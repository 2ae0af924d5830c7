// SPDX-License-Identifier: Apache-2.0
// The loading set: which pages of an image one restore touched, in what order, read or
// written (DESIGN.md §2). Produced by snap-record (and snap-restore --record), consumed by
// snap-split and snap-stat. Several loading sets of one image merge (union, intersection,
// "seen in at least K").
#pragma once
#include "image.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace snap {

enum Access : uint8_t { kAccessRead = 1, kAccessWrite = 2 };

// One page's first touch. rank orders first touches (0 = first); methods that scan in rounds
// give every page of a round the same rank. time_ns is relative to the start of recording
// (0 where the method has no clock).
struct Touch {
    uint64_t page = 0;
    uint64_t time_ns = 0;
    uint32_t rank = 0;
    uint8_t access = kAccessRead;
    bool operator==(const Touch&) const = default;
};

struct LoadingSet {
    ImageIdentity image;
    std::string method;         // "mincore", "pagemap", "uffd", "bpf", or "merge"
    bool knows_writes = false;  // the method tells reads from writes
    bool has_time = false;      // time_ns is meaningful
    nlohmann::json meta = nlohmann::json::object();  // run metadata, limitations
    std::vector<Touch> touches;  // one per page, in first-touch order

    // Sort by (rank, time, page) and fold duplicate pages (access bits OR-ed, earliest kept).
    void normalize();
    uint64_t read_pages() const;     // touched pages never written
    uint64_t written_pages() const;  // pages with the write bit
};

// Loading-set header flags (required: a reader must understand them).
constexpr uint32_t kLoadsetKnowsWrites = 1u << 0;
constexpr uint32_t kLoadsetHasTime = 1u << 1;

// Write atomically to path ("-" = stdout). Returns the artifact digest. `unchanged` (if given)
// says whether path already held these bytes and was left untouched (file::AtomicOutput).
uint64_t write_loadset(const LoadingSet& ls, const std::string& path, bool* unchanged = nullptr);
// Parse and fully verify. Throws BadInput naming the file. digest receives the artifact digest.
LoadingSet read_loadset(const std::string& path, uint64_t* digest = nullptr);
LoadingSet read_loadset(file::InputFile file, uint64_t* digest = nullptr);

enum class MergeMode { union_all, intersect, at_least };
struct MergeSpec {
    MergeMode mode = MergeMode::union_all;
    unsigned k = 1;
};
// "union", "intersect", "atleast:K". Throws UsageError.
MergeSpec parse_merge_spec(const std::string& text);

// Merge loading sets of one image. A page is kept by the mode's rule; its access is the OR
// over the sets that touched it; its rank the smallest rank it had in any set.
// Throws UsageError if the sets name different images.
LoadingSet merge_loadsets(const std::vector<LoadingSet>& sets, const MergeSpec& spec);

}  // namespace snap

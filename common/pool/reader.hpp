// SPDX-License-Identifier: Apache-2.0
// Reading a part that lives in the pool, for a restore: random access by part offset (what a
// fault needs), with a size-bounded cache of decoded chunks and read-ahead. A fault fetches
// only the chunks it needs, on the critical path (one GET per chunk, pipelined per node); the
// next chunks in part order — the loading order for RO and RW parts, address order for COLD —
// are then fetched by a background thread with connections of its own, so the next fault in
// the same stretch finds its chunk already here. Whole parts (hot classes before resume) are
// fetched in large pipelines. Every chunk is checked against its name before use.
#pragma once
#include "common/pool/store.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace snap::pool {

struct ReadOptions {
    // Read-ahead, in chunks (0 = none): after a miss that continues the previous read (a
    // sequential scan: it starts in or just after the chunk the last read ended in), and while
    // the read-ahead keeps paying off. A lone miss fetches only what it needs: a 16-chunk
    // pipeline after every random miss cost the next misses 3-4x their round trip here, and
    // none of it was used (bench/restore's mispredicted replays: hit rate 0-2%).
    uint32_t prefetch_chunks = 16;
    uint64_t cache_bytes = 256ull << 20;  // decoded chunks kept (the oldest go first)
    // Where placed::PartSource reads a pool part from: "" = the URL its manifest names; else
    // this URL's seeds (snap-restore --pool: the same cluster reached at other addresses; the
    // caller checks that the namespace is the manifest's).
    std::string url;
    ClientOptions client;
};

struct ReadStats {
    uint64_t demand_fetches = 0;   // round trips a read waited for (critical path)
    uint64_t demand_chunks = 0;    // chunks fetched on the critical path
    uint64_t demand_bytes = 0;     // value bytes fetched on the critical path
    uint64_t prefetched_chunks = 0, prefetched_bytes = 0;
    uint64_t prefetch_hits = 0;    // chunks a read found because read-ahead had fetched them
    uint64_t cache_hits = 0;       // chunks a read found in the cache (prefetch hits included)
    uint64_t waited = 0;           // reads that waited for a fetch already in flight
    uint64_t bulk_chunks = 0, bulk_bytes = 0;  // read_all
    uint64_t demand_ns = 0, bulk_ns = 0;       // time spent fetching (and checking) them
};

class PartReader {
public:
    PartReader(const PoolUrl& url, std::vector<ChunkRef> chunks, ReadOptions opt = {});
    ~PartReader();
    PartReader(const PartReader&) = delete;
    PartReader& operator=(const PartReader&) = delete;
    uint64_t raw_bytes() const { return raw_bytes_; }
    // Raw bytes [offset, offset+len) of the part into dst.
    void read(uint64_t offset, size_t len, std::byte* dst);
    // The whole part into dst (raw_bytes long), in pipelines of many chunks.
    void read_all(std::byte* dst);
    // Raw bytes [offset, offset+len) into dst the same way, bypassing the cache: a hot part read
    // window by window into reused buffers. Both ends on chunk boundaries (chunk_start). One
    // bulk read at a time; it has connections of its own, so demand reads may run meanwhile.
    void read_span(uint64_t offset, uint64_t len, std::byte* dst);
    // The start of the chunk holding offset (raw_bytes() for offset >= raw_bytes()).
    uint64_t chunk_start(uint64_t offset) const;
    uint64_t max_chunk_bytes() const { return max_chunk_; }
    ReadStats stats() const;
    // Where the first failure of the read-ahead thread happened, if any (reads refetch and
    // report their own failure; this is for the report).
    std::string prefetch_error() const;

private:
    struct Entry {
        std::vector<std::byte> bytes;
        bool prefetched = false, used = false;
        std::list<size_t>::iterator lru;
    };
    // Chunks to fetch: into buffers of their own (cache entries to be), or where into(k)
    // says (non-null: chunks[k] goes straight to its reader's memory, bufs[k] stays empty).
    struct Batch {
        std::vector<ChunkRef> refs;
        std::vector<std::vector<std::byte>> bufs;
        std::vector<std::byte*> dsts;
    };
    Batch batch_of(const std::vector<size_t>& chunks, const std::function<std::byte*(size_t)>& into = {}) const;
    size_t chunk_at(uint64_t offset) const;
    void insert_locked(size_t i, std::vector<std::byte> bytes, bool prefetched);
    void prefetch_loop();

    PoolUrl url_;
    std::vector<ChunkRef> chunks_;
    std::vector<uint64_t> start_;  // raw offset of each chunk
    uint64_t raw_bytes_ = 0;
    ReadOptions opt_;
    ChunkStore store_;             // the reading thread's connections
    void* dctx_ = nullptr;
    // read_span's two streams: connections and decoders made at the first bulk read, kept.
    std::unique_ptr<ChunkStore> bulk_[2];
    void* bulk_dctx_[2] = {nullptr, nullptr};
    uint64_t max_chunk_ = 0;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<size_t, Entry> cache_;
    std::list<size_t> lru_;        // most recent first
    uint64_t cached_bytes_ = 0;
    std::vector<bool> inflight_;
    std::vector<size_t> want_;     // read-ahead queue
    size_t last_read_ = SIZE_MAX;  // the chunk the previous read ended in (SIZE_MAX: none yet)
    bool stop_ = false;
    ReadStats stats_;
    std::string prefetch_error_;
    std::thread prefetcher_;
};

}  // namespace snap::pool

// SPDX-License-Identifier: Apache-2.0
// PartReader: demand fetches, the chunk cache and the read-ahead thread.
#include "reader.hpp"

#include "common/error.hpp"

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <cstring>

namespace snap::pool {

namespace {
uint64_t now_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
}  // namespace

PartReader::PartReader(const PoolUrl& url, std::vector<ChunkRef> chunks, ReadOptions opt)
    : url_(url), chunks_(std::move(chunks)), opt_(opt), store_(url, opt.client) {
    start_.reserve(chunks_.size());
    for (auto& c : chunks_) {
        start_.push_back(raw_bytes_);
        raw_bytes_ += c.raw_bytes;
        max_chunk_ = std::max<uint64_t>(max_chunk_, c.raw_bytes);
    }
    inflight_.assign(chunks_.size(), false);
    dctx_ = ZSTD_createDCtx();
    if (!dctx_) throw std::bad_alloc();
    // Every node's connection now, while the restore sets up, not at the first fault on it.
    store_.client().connect_masters();
}

PartReader::~PartReader() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (prefetcher_.joinable()) prefetcher_.join();
    ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
    for (void* d : bulk_dctx_) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(d));
}

uint64_t PartReader::chunk_start(uint64_t offset) const {
    return offset >= raw_bytes_ ? raw_bytes_ : start_[chunk_at(offset)];
}

size_t PartReader::chunk_at(uint64_t offset) const {
    auto it = std::upper_bound(start_.begin(), start_.end(), offset);
    return static_cast<size_t>(it - start_.begin()) - 1;
}

PartReader::Batch PartReader::batch_of(const std::vector<size_t>& chunks,
                                       const std::function<std::byte*(size_t)>& into) const {
    Batch b;
    b.bufs.resize(chunks.size());
    for (size_t k = 0; k < chunks.size(); ++k) {
        b.refs.push_back(chunks_[chunks[k]]);
        std::byte* d = into ? into(k) : nullptr;
        if (!d) {
            b.bufs[k].resize(chunks_[chunks[k]].raw_bytes);
            d = b.bufs[k].data();
        }
        b.dsts.push_back(d);
    }
    return b;
}

void PartReader::insert_locked(size_t i, std::vector<std::byte> bytes, bool prefetched) {
    if (cache_.count(i)) return;
    const uint64_t n = bytes.size();
    // Make room: the least recently used first (never below one entry: a read needs it).
    while (!lru_.empty() && cached_bytes_ + n > opt_.cache_bytes) {
        size_t old = lru_.back();
        lru_.pop_back();
        cached_bytes_ -= cache_[old].bytes.size();
        cache_.erase(old);
    }
    lru_.push_front(i);
    Entry& e = cache_[i];
    e.bytes = std::move(bytes);
    e.prefetched = prefetched;
    e.lru = lru_.begin();
    cached_bytes_ += n;
}

void PartReader::read(uint64_t offset, size_t len, std::byte* dst) {
    if (offset > raw_bytes_ || len > raw_bytes_ - offset) throw Error("internal: read past the end of a pool part");
    if (len == 0) return;
    const size_t first = chunk_at(offset), last = chunk_at(offset + len - 1);
    std::vector<size_t> need;
    bool sequential = false;  // this read continues the previous one: read ahead if it misses
    {
        std::unique_lock lk(mu_);
        sequential = last_read_ != SIZE_MAX && (first == last_read_ || first == last_read_ + 1);
        last_read_ = last;
        for (size_t i = first; i <= last; ++i) {
            while (inflight_[i] && !cache_.count(i)) {
                ++stats_.waited;
                cv_.wait(lk);
            }
            if (cache_.count(i)) continue;
            inflight_[i] = true;
            need.push_back(i);
        }
    }
    // A chunk this read covers whole is decoded straight into dst and not kept: its pages are
    // about to be installed, and nothing reads them from the pool again (a ballooned page comes
    // back as zeros). A buffer of its own would cost a fresh zeroed page per 4 KiB and a copy.
    // Only chunks the read covers in part, whose other pages a later fault may want, are kept.
    auto whole = [&](size_t i) { return start_[i] >= offset && start_[i] + chunks_[i].raw_bytes <= offset + len; };
    std::vector<bool> direct(last - first + 1);  // by chunk - first
    if (!need.empty()) {
        Batch b = batch_of(need, [&](size_t k) {
            direct[need[k] - first] = whole(need[k]);
            return direct[need[k] - first] ? dst + (start_[need[k]] - offset) : nullptr;
        });
        uint64_t moved = 0;
        const uint64_t t0 = now_ns();
        try {
            moved = store_.fetch(b.refs, b.dsts, dctx_);
        } catch (...) {
            std::lock_guard lk(mu_);
            for (size_t i : need) inflight_[i] = false;
            cv_.notify_all();
            throw;
        }
        std::lock_guard lk(mu_);
        stats_.demand_ns += now_ns() - t0;
        ++stats_.demand_fetches;
        stats_.demand_chunks += need.size();
        stats_.demand_bytes += moved;
        for (size_t k = 0; k < need.size(); ++k) {
            if (!direct[need[k] - first]) insert_locked(need[k], std::move(b.bufs[k]), false);
            inflight_[need[k]] = false;
        }
        // A sequential scan: read ahead from the chunk after the last one this read needed.
        // The thread and its connections are made at the first scan: a reader that never
        // sees one (random faults, whole-part reads) never pays for them.
        if (opt_.prefetch_chunks && sequential) {
            for (size_t i = last + 1; i < chunks_.size() && i <= last + opt_.prefetch_chunks; ++i)
                if (!cache_.count(i) && !inflight_[i]) want_.push_back(i);
            if (!prefetcher_.joinable()) prefetcher_ = std::thread([this] { prefetch_loop(); });
        }
        cv_.notify_all();
    }
    std::unique_lock lk(mu_);
    for (size_t i = first; i <= last; ++i) {
        if (direct[i - first]) continue;  // already in dst
        auto it = cache_.find(i);
        if (it == cache_.end()) {
            // Evicted between fetch and copy (a cache smaller than one read): fetch directly.
            lk.unlock();
            std::vector<std::byte> b(chunks_[i].raw_bytes);
            std::vector<std::byte*> d{b.data()};
            store_.fetch({chunks_[i]}, d, dctx_);
            uint64_t lo = std::max<uint64_t>(offset, start_[i]), hi = std::min<uint64_t>(offset + len, start_[i] + chunks_[i].raw_bytes);
            std::memcpy(dst + (lo - offset), b.data() + (lo - start_[i]), hi - lo);
            lk.lock();
            continue;
        }
        Entry& e = it->second;
        if (std::find(need.begin(), need.end(), i) == need.end()) {
            ++stats_.cache_hits;
            if (e.prefetched && !e.used) {
                ++stats_.prefetch_hits;
                // The read-ahead paid off: keep the window ahead of the reader (the chunk a
                // window past this one), so a stream of faults stops waiting at its edge.
                const size_t next = i + opt_.prefetch_chunks;
                if (next < chunks_.size() && !cache_.count(next) && !inflight_[next]) {
                    want_.push_back(next);
                    cv_.notify_all();
                }
            }
        }
        e.used = true;
        lru_.splice(lru_.begin(), lru_, e.lru);
        uint64_t lo = std::max<uint64_t>(offset, start_[i]), hi = std::min<uint64_t>(offset + len, start_[i] + chunks_[i].raw_bytes);
        std::memcpy(dst + (lo - offset), e.bytes.data() + (lo - start_[i]), hi - lo);
    }
}

void PartReader::prefetch_loop() {
    std::unique_ptr<ChunkStore> store;
    try {
        store = std::make_unique<ChunkStore>(url_, opt_.client);
        store->client().connect_masters();
    } catch (const std::exception&) {
        // Not a failure of any read yet: a read ahead tries again, and reports what it meets.
    }
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    for (;;) {
        std::vector<size_t> take;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !want_.empty(); });
            if (stop_) break;
            for (size_t i : want_)
                if (!cache_.count(i) && !inflight_[i]) {
                    inflight_[i] = true;
                    take.push_back(i);
                }
            want_.clear();
        }
        if (take.empty()) continue;
        Batch b = batch_of(take);
        uint64_t moved = 0;
        bool ok = true;
        try {
            if (!store) store = std::make_unique<ChunkStore>(url_, opt_.client);
            moved = store->fetch(b.refs, b.dsts, dctx);
        } catch (const std::exception& e) {
            ok = false;
            store.reset();  // reconnect next time
            std::lock_guard lk(mu_);
            if (prefetch_error_.empty()) prefetch_error_ = e.what();
        }
        std::lock_guard lk(mu_);
        if (ok) {
            stats_.prefetched_chunks += take.size();
            stats_.prefetched_bytes += moved;
        }
        for (size_t k = 0; k < take.size(); ++k) {
            if (ok) insert_locked(take[k], std::move(b.bufs[k]), true);
            inflight_[take[k]] = false;
        }
        cv_.notify_all();
    }
    ZSTD_freeDCtx(dctx);
}

void PartReader::read_all(std::byte* dst) { read_span(0, raw_bytes_, dst); }

void PartReader::read_span(uint64_t offset, uint64_t len, std::byte* dst) {
    if (offset > raw_bytes_ || len > raw_bytes_ - offset) throw Error("internal: read past the end of a pool part");
    if (len == 0) return;
    const size_t first = chunk_at(offset), stop = offset + len == raw_bytes_ ? chunks_.size() : chunk_at(offset + len);
    if (start_[first] != offset || (stop < chunks_.size() && start_[stop] != offset + len))
        throw Error("internal: a bulk read of a pool part off its chunk boundaries");
    // Two streams of pipelines, each on its own connections: one decodes and checks a batch
    // while the other's is on the wire (one stream alone leaves client and server taking turns).
    // A pipeline asks for about 512 KiB of values: a reply that fits the sockets' buffers is
    // written by the server at once, while a larger one makes server and client wait on each
    // other at every buffer's worth (a wake-up each, tens of µs on these VMs). Measured with
    // 16 KiB chunks (bench/pool_bench.sh): 256 chunks (4 MiB) a pipeline 0.54-0.75 GB/s, 64
    // 0.56-1.23, 32 0.90-1.39 (median 1.23), 16 1.03-1.26.
    constexpr uint64_t kBatchBytes = 512u << 10;
    std::vector<size_t> cut{first};  // batch b is chunks [cut[b], cut[b+1])
    for (size_t i = first, bytes = 0; i < stop; ++i) {
        if (bytes > 0 && bytes + chunks_[i].stored_bytes > kBatchBytes) {
            cut.push_back(i);
            bytes = 0;
        }
        bytes += chunks_[i].stored_bytes;
    }
    cut.push_back(stop);
    const size_t batches = cut.size() - 1;
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> moved{0};
    std::exception_ptr failure;
    std::mutex failure_mu;
    auto work = [&](ChunkStore& store, void* dctx) {
        try {
            for (size_t b; (b = next.fetch_add(1)) < batches;) {
                const size_t lo = cut[b], hi = cut[b + 1];
                std::vector<ChunkRef> refs(chunks_.begin() + static_cast<ptrdiff_t>(lo), chunks_.begin() + static_cast<ptrdiff_t>(hi));
                std::vector<std::byte*> dsts;
                for (size_t i = lo; i < hi; ++i) dsts.push_back(dst + (start_[i] - offset));
                moved += store.fetch(refs, dsts, dctx);
            }
        } catch (...) {
            std::lock_guard lk(failure_mu);
            if (!failure) failure = std::current_exception();
            next = batches;  // the other stream stops too
        }
    };
    // A stream's connections and decoder, made once and kept; false: it cannot be made.
    auto ready = [&](int k) {
        try {
            if (!bulk_[k]) bulk_[k] = std::make_unique<ChunkStore>(url_, opt_.client);
            if (!bulk_dctx_[k]) bulk_dctx_[k] = ZSTD_createDCtx();
        } catch (...) {
            if (k == 0) throw;  // the first stream's failure is the read's
            return false;
        }
        if (!bulk_dctx_[k]) {
            if (k == 0) throw std::bad_alloc();
            return false;
        }
        return true;
    };
    const uint64_t t0 = now_ns();
    std::thread second;
    if (batches > 1)
        second = std::thread([&] {
            if (ready(1)) work(*bulk_[1], bulk_dctx_[1]);  // else the first stream does it all
        });
    try {
        ready(0);
    } catch (...) {
        next = batches;
        if (second.joinable()) second.join();
        throw;
    }
    work(*bulk_[0], bulk_dctx_[0]);
    if (second.joinable()) second.join();
    if (failure) std::rethrow_exception(failure);
    std::lock_guard lk(mu_);
    stats_.bulk_ns += now_ns() - t0;
    stats_.bulk_chunks += stop - first;
    stats_.bulk_bytes += moved;
}

ReadStats PartReader::stats() const {
    std::lock_guard lk(mu_);
    return stats_;
}

std::string PartReader::prefetch_error() const {
    std::lock_guard lk(mu_);
    return prefetch_error_;
}

}  // namespace snap::pool

// SPDX-License-Identifier: Apache-2.0
// The pool as snapkit uses it (DESIGN.md §2): content-addressed chunks, the manifests that
// name them, and the protocol that lets placements and collections run at the same time
// without losing a chunk. Built on RedisCluster (common/pool/redis.hpp), which moves bytes.
//
// Keys, under the URL's namespace NS (no {hash tags}: chunks spread over every node):
//   NS:c:<xxh3-128 hex>    a chunk's value (common/pool/chunk.hpp)
//   NS:m:<digest hex>      a registered placed artifact (its bytes: a restore on any host
//                          fetches it with `snap-place --pool URL --fetch`)
//   NS:r:<digest hex>      the chunk ids that manifest names (16 bytes each), for collection
//   NS:n:<name>            a name for a manifest (its digest hex): the refresh's "current"
//   NS:lease:<token>       the chunk ids of a placement in progress (expires: a crashed one
//                          holds nothing for long)
//   NS:gc                  held by a running collection (expires)
//
// Placement: lease the chunk ids → wait while a collection holds NS:gc → EXISTS → SET the
// missing chunks (acknowledged) → write the manifest file → register r, then m, then the name
// → drop the lease. Collection: take NS:gc → read every lease, then every r (the live set;
// this order matters: see collect()) → delete every chunk outside it → release. A placement that saw "no collection" wrote its
// lease before the collection took the lock, so the collection reads it; one that saw the lock
// waits for its end. Chunks are never overwritten (SET NX): same name, same bytes.
#pragma once
#include "common/pool/chunk.hpp"
#include "common/pool/redis.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace snap::pool {

struct ChunkRef {
    ChunkId id;
    uint32_t raw_bytes = 0;
    uint32_t stored_bytes = 0;  // the value's length in the pool (header included)
    bool operator==(const ChunkRef&) const = default;
};

class ChunkStore {
public:
    explicit ChunkStore(const PoolUrl& url, ClientOptions opt = {});
    const PoolUrl& url() const { return url_; }
    RedisCluster& client() { return client_; }
    std::string chunk_key(const ChunkId& id) const;

    // Which chunks are there already (one pipeline per node).
    std::vector<bool> present(const std::vector<ChunkId>& ids);
    // Store values (SET NX, acknowledged).
    void put(const std::vector<std::pair<ChunkId, std::string>>& values);
    // Fetch and check chunks into dst[i] (refs[i].raw_bytes each). A missing chunk or a value
    // that is not the chunk is BadInput naming the chunk and its node; a node that fails is
    // PoolError naming the node. Returns the value bytes moved.
    uint64_t fetch(const std::vector<ChunkRef>& refs, const std::vector<std::byte*>& dst, void* dctx);

    // Manifests.
    struct Registered {
        uint64_t digest = 0;
        std::vector<ChunkId> ids;  // the chunks it names (distinct)
        std::vector<std::string> names;
    };
    // Returns the digest the name pointed at before, if it pointed at another manifest (that
    // one stays registered, so that a restore using it goes on working: --remove it when
    // nothing uses it any more).
    std::optional<uint64_t> register_manifest(uint64_t digest, const std::string& bytes, const std::vector<ChunkId>& ids,
                                              const std::string& name);
    std::vector<Registered> list();
    // Remove by name: that name; the manifest is unregistered with its last name (others that
    // point at it keep it). By digest: the manifest and every name that points at it. Chunks
    // stay until a collection. digest: the manifest matched (nullopt: none).
    struct Removed {
        std::optional<uint64_t> digest;
        bool unregistered = false;
        std::vector<std::string> kept_names;  // by name: other names that keep it registered
    };
    Removed remove(const std::string& digest_or_name);
    std::optional<std::string> fetch_manifest(const std::string& digest_or_name);

    // Leases (placement side).
    std::string begin_lease(const std::vector<ChunkId>& ids, uint64_t ttl_ms);
    void renew_lease(const std::string& token, uint64_t ttl_ms);
    void end_lease(const std::string& token);
    // Block while a collection holds the lock (polling), at most wait_ms; UsageError after.
    void wait_for_collection(uint64_t wait_ms);

    struct CollectStats {
        uint64_t manifests = 0, leases = 0, live_chunks = 0, chunks_seen = 0, chunks_deleted = 0;
    };
    CollectStats collect(uint64_t lock_ttl_ms = 600000);

private:
    std::optional<uint64_t> resolve(const std::string& digest_or_name);
    std::vector<ChunkId> ids_at(const std::string& key);
    PoolUrl url_;
    RedisCluster client_;
};

// A manifest name: 1-128 characters of A-Z a-z 0-9 . _ -, not 16 hex digits (a digest)
bool valid_name(std::string_view name);

// Chunk ids of a byte string of concatenated 16-byte ids (r and lease values).
std::string pack_ids(const std::vector<ChunkId>& ids);
std::vector<ChunkId> unpack_ids(std::string_view bytes);

}  // namespace snap::pool

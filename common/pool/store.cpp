// SPDX-License-Identifier: Apache-2.0
// The chunk store: keys, checked fetches, the manifest registry, leases and collection.
#include "store.hpp"

#include "common/error.hpp"
#include "common/hash.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <random>
#include <set>
#include <thread>

namespace snap::pool {

namespace {
constexpr size_t kBatch = 512;  // keys per call: the client pipelines per node
void put_u64le(std::string& s, uint64_t v) {
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_u64le(const char* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}
std::string random_token() {
    std::random_device rd;
    std::string t;
    char buf[9];
    for (int i = 0; i < 2; ++i) {
        std::snprintf(buf, sizeof buf, "%08x", rd());
        t += buf;
    }
    return t;
}
}  // namespace

bool valid_name(std::string_view n) {
    if (n.empty() || n.size() > 128) return false;
    uint64_t d = 0;
    if (hash::from_hex(n, d)) return false;  // 16 hex digits read as a digest
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
    return true;
}

std::string pack_ids(const std::vector<ChunkId>& ids) {
    std::string s;
    s.reserve(ids.size() * 16);
    for (auto& id : ids) {
        put_u64le(s, id.hi);
        put_u64le(s, id.lo);
    }
    return s;
}

std::vector<ChunkId> unpack_ids(std::string_view b) {
    std::vector<ChunkId> ids;
    ids.reserve(b.size() / 16);
    for (size_t i = 0; i + 16 <= b.size(); i += 16) ids.push_back({get_u64le(b.data() + i), get_u64le(b.data() + i + 8)});
    return ids;
}

ChunkStore::ChunkStore(const PoolUrl& url, ClientOptions opt) : url_(url), client_(url, opt) {}

std::string ChunkStore::chunk_key(const ChunkId& id) const { return url_.ns + ":c:" + to_hex(id); }

std::vector<bool> ChunkStore::present(const std::vector<ChunkId>& ids) {
    std::vector<bool> out;
    out.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); i += kBatch) {
        std::vector<std::string> keys;
        for (size_t j = i; j < std::min(ids.size(), i + kBatch); ++j) keys.push_back(chunk_key(ids[j]));
        auto e = client_.exists(keys);
        out.insert(out.end(), e.begin(), e.end());
    }
    return out;
}

void ChunkStore::put(const std::vector<std::pair<ChunkId, std::string>>& values) {
    for (size_t i = 0; i < values.size(); i += kBatch) {
        std::vector<std::pair<std::string, std::string>> kv;
        for (size_t j = i; j < std::min(values.size(), i + kBatch); ++j) kv.emplace_back(chunk_key(values[j].first), values[j].second);
        client_.set(kv, true);
    }
}

uint64_t ChunkStore::fetch(const std::vector<ChunkRef>& refs, const std::vector<std::byte*>& dst, void* dctx) {
    uint64_t moved = 0;
    for (size_t i = 0; i < refs.size(); i += kBatch) {
        std::vector<std::string> keys;
        const size_t end = std::min(refs.size(), i + kBatch);
        for (size_t j = i; j < end; ++j) keys.push_back(chunk_key(refs[j].id));
        // Decoded straight from the reply into the page (no copy of the value); the first
        // fault is kept and thrown after the pipeline is read.
        std::vector<bool> got(keys.size(), false);
        size_t bad = SIZE_MAX;
        std::string why;
        client_.get_each(keys, [&](size_t k, std::string_view v) {
            got[k] = true;
            if (bad != SIZE_MAX) return;
            std::string w = decode_value(v, refs[i + k].id, refs[i + k].raw_bytes, dst[i + k], dctx);
            if (!w.empty()) {
                bad = k;
                why = std::move(w);
                return;
            }
            moved += v.size();
        });
        if (bad != SIZE_MAX)
            throw BadInput(url_.text, "chunk " + to_hex(refs[i + bad].id) + " (node " + client_.node_for(keys[bad]) + "): " + why);
        for (size_t k = 0; k < keys.size(); ++k)
            if (!got[k])
                throw BadInput(url_.text, "chunk " + to_hex(refs[i + k].id) + " is missing from the pool (node " +
                                              client_.node_for(keys[k]) + ")");
    }
    return moved;
}

std::optional<uint64_t> ChunkStore::register_manifest(uint64_t digest, const std::string& bytes, const std::vector<ChunkId>& ids,
                                                      const std::string& name) {
    const std::string d = hash::to_hex(digest);
    client_.set({{url_.ns + ":r:" + d, pack_ids(ids)}});   // what it names first: collection reads r
    client_.set({{url_.ns + ":m:" + d, bytes}});
    if (name.empty()) return std::nullopt;
    auto before = client_.get({url_.ns + ":n:" + name});
    client_.set({{url_.ns + ":n:" + name, d}});
    uint64_t prev = 0;
    if (before[0] && *before[0] != d && hash::from_hex(*before[0], prev)) return prev;
    return std::nullopt;
}

std::vector<ChunkStore::Registered> ChunkStore::list() {
    std::vector<Registered> out;
    auto keys = client_.scan(url_.ns + ":r:*");
    std::sort(keys.begin(), keys.end());
    auto names = client_.scan(url_.ns + ":n:*");
    std::vector<std::optional<std::string>> targets = names.empty() ? std::vector<std::optional<std::string>>{} : client_.get(names);
    std::vector<std::optional<std::string>> lists = keys.empty() ? std::vector<std::optional<std::string>>{} : client_.get(keys);
    const size_t prefix = url_.ns.size() + 3;
    for (size_t k = 0; k < keys.size(); ++k) {
        Registered r;
        if (!hash::from_hex(std::string_view(keys[k]).substr(prefix), r.digest)) continue;
        if (lists[k]) r.ids = unpack_ids(*lists[k]);
        for (size_t i = 0; i < names.size(); ++i)
            if (targets[i] && *targets[i] == keys[k].substr(prefix)) r.names.push_back(names[i].substr(prefix));
        std::sort(r.names.begin(), r.names.end());
        out.push_back(std::move(r));
    }
    return out;
}

std::optional<uint64_t> ChunkStore::resolve(const std::string& x) {
    uint64_t d = 0;
    if (hash::from_hex(x, d)) return d;
    auto v = client_.get({url_.ns + ":n:" + x});
    if (v[0] && hash::from_hex(*v[0], d)) return d;
    return std::nullopt;
}

ChunkStore::Removed ChunkStore::remove(const std::string& x) {
    Removed out;
    auto d = resolve(x);
    if (!d) return out;
    const std::string hex = hash::to_hex(*d);
    if (!client_.exists({url_.ns + ":r:" + hex})[0]) return out;
    out.digest = d;
    uint64_t parsed = 0;
    const bool by_name = !hash::from_hex(x, parsed);
    auto names = client_.scan(url_.ns + ":n:*");
    std::vector<std::string> pointing;  // names of this manifest
    if (!names.empty()) {
        auto targets = client_.get(names);
        for (size_t i = 0; i < names.size(); ++i)
            if (targets[i] && *targets[i] == hex) pointing.push_back(names[i]);
    }
    if (by_name) {
        // One name goes; the manifest goes with its last name (another name is another user).
        client_.del({url_.ns + ":n:" + x});
        for (auto& n : pointing)
            if (n != url_.ns + ":n:" + x) out.kept_names.push_back(n.substr(url_.ns.size() + 3));
        if (!out.kept_names.empty()) return out;
    } else if (!pointing.empty()) {
        client_.del(pointing);
    }
    client_.del({url_.ns + ":m:" + hex});
    client_.del({url_.ns + ":r:" + hex});
    out.unregistered = true;
    return out;
}

std::optional<std::string> ChunkStore::fetch_manifest(const std::string& x) {
    auto d = resolve(x);
    if (!d) return std::nullopt;
    auto v = client_.get({url_.ns + ":m:" + hash::to_hex(*d)});
    return v[0];
}

std::string ChunkStore::begin_lease(const std::vector<ChunkId>& ids, uint64_t ttl_ms) {
    std::string token = random_token();
    if (!client_.set_nx_px(url_.ns + ":lease:" + token, pack_ids(ids), ttl_ms))
        throw Error("pool " + url_.text + ": lease " + token + " exists already");
    return token;
}

void ChunkStore::renew_lease(const std::string& token, uint64_t ttl_ms) {
    if (!client_.pexpire(url_.ns + ":lease:" + token, ttl_ms))
        throw Error("pool " + url_.text + ": the placement's lease expired (a collection may have removed chunks it relies on)",
                    ExitCode::runtime, "place again");
}

void ChunkStore::end_lease(const std::string& token) { client_.del({url_.ns + ":lease:" + token}); }

void ChunkStore::wait_for_collection(uint64_t wait_ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (client_.exists({url_.ns + ":gc"})[0]) {
        if (std::chrono::steady_clock::now() > until)
            throw Error("pool " + url_.text + ": a collection has held " + url_.ns + ":gc for over " +
                            std::to_string(wait_ms / 1000) + " s",
                        ExitCode::runtime, "wait for it to end, or delete the key if no collection is running");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

std::vector<ChunkId> ChunkStore::ids_at(const std::string& key) {
    auto v = client_.get({key});
    return v[0] ? unpack_ids(*v[0]) : std::vector<ChunkId>{};
}

ChunkStore::CollectStats ChunkStore::collect(uint64_t lock_ttl_ms) {
    const std::string lock = url_.ns + ":gc", token = random_token();
    if (!client_.set_nx_px(lock, token, lock_ttl_ms))
        throw Error("pool " + url_.text + ": another collection is running (" + lock + " is held)", ExitCode::runtime,
                    "wait for it to end");
    CollectStats st;
    struct Release {
        ChunkStore* s;
        const std::string& lock;
        const std::string& token;
        ~Release() {
            try {
                auto v = s->client_.get({lock});
                if (v[0] && *v[0] == token) s->client_.del({lock});
            } catch (...) {
            }
        }
    } release{this, lock, token};
    // Leases before manifests: a placement registers its manifest before it drops its lease,
    // so a lease gone by the time it is looked for left a manifest that the later look at
    // manifests finds. (The other order lost chunks: manifests read before one is registered,
    // then its lease dropped before leases are read.)
    std::set<ChunkId> live;
    for (auto& k : client_.scan(url_.ns + ":lease:*")) {
        ++st.leases;
        for (auto& id : ids_at(k)) live.insert(id);
    }
    for (auto& k : client_.scan(url_.ns + ":r:*")) {
        ++st.manifests;
        for (auto& id : ids_at(k)) live.insert(id);
    }
    st.live_chunks = live.size();
    const std::string prefix = url_.ns + ":c:";
    std::vector<std::string> dead;
    for (auto& k : client_.scan(prefix + "*")) {
        ++st.chunks_seen;
        ChunkId id;
        if (k.size() != prefix.size() + 32 || !from_hex(std::string_view(k).substr(prefix.size()), id)) continue;
        if (!live.count(id)) dead.push_back(k);
    }
    for (size_t i = 0; i < dead.size(); i += kBatch) {
        client_.pexpire(lock, lock_ttl_ms);
        client_.del(std::vector<std::string>(dead.begin() + i, dead.begin() + std::min(dead.size(), i + kBatch)));
    }
    st.chunks_deleted = dead.size();
    return st;
}

}  // namespace snap::pool

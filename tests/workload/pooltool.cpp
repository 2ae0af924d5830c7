// SPDX-License-Identifier: Apache-2.0
// pooltool: drives snap::pool::RedisCluster against real servers for tests/cli/pool_redis.sh,
// and measures GET latency and bandwidth for the pool tier's calibration.
//   pooltool cycle  --url U --keys N      set/get/exists/del/scan/nx/lease round trip, checked
//   pooltool fill   --url U --keys N      write the deterministic key set (binary keys, values
//                                          of 4 KiB, 64 KiB and small ones, NUL bytes in all)
//   pooltool verify --url U --keys N [--wait-file F [--pre-verify]]
//                                          read every key back and compare; with --wait-file the
//                                          client loads its slot map first, touches F.ready and
//                                          waits for F (so the test can move slots under it)
//   pooltool check-eviction --url U       exit 1 unless every master is noeviction
//   pooltool bench --url U                 one JSON object: p50 latency (us) and GB/s
//   pooltool slot KEY...                   the hash slot of each key, one a line
//   pooltool connect --url U               connect to every master now (best effort): how many answered
//   pooltool readahead --url U             a restore's reads of a pool part (PartReader): scattered
//                                          reads fetch only what they need, a scan reads ahead
// --tag T (cycle, fill, verify): ASCII keys all in the slot of {T}, for slot-migration tests.
// Every subcommand but slot prints one JSON object on stdout; errors are one line on stderr.
#include "common/cli.hpp"
#include "common/pool/chunk.hpp"
#include "common/pool/reader.hpp"
#include "common/pool/redis.hpp"
#include "common/pool/store.hpp"

#include <zstd.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace snap;
using namespace snap::pool;

namespace {

uint64_t mix(uint64_t z) {  // splitmix64's finaliser
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

const std::string kPrefix = "pooltest:c:";
std::string g_tag;  // --tag: ASCII keys in the one slot of {TAG} instead

// Key i: the prefix, then 12 bytes of anything (NUL, '{', '}' included), then i: unique, and
// spread over every slot. With --tag: "pooltest:c:{TAG}:SEED:I".
std::string key_of(uint64_t seed, uint64_t i) {
    if (!g_tag.empty()) return kPrefix + "{" + g_tag + "}:" + std::to_string(seed) + ":" + std::to_string(i);
    std::string k = kPrefix;
    uint64_t a = mix(seed * 1000003 + i), b = mix(a);
    for (int j = 0; j < 8; ++j) k += static_cast<char>(a >> (8 * j));
    for (int j = 0; j < 4; ++j) k += static_cast<char>(b >> (8 * j));
    k += ":" + std::to_string(i);
    return k;
}

std::string value_of(uint64_t seed, uint64_t i) {
    size_t size = i % 3 == 0 ? 4096 : i % 3 == 1 ? 65536 : 1 + mix(i) % 1000;
    std::string v(size, '\0');
    uint64_t x = mix(seed ^ (i << 20));
    for (size_t j = 0; j < size; j += 8) {
        x = mix(x);
        for (size_t b = 0; b < 8 && j + b < size; ++b) v[j + b] = static_cast<char>(x >> (8 * b));
    }
    for (size_t j = 0; j < size; j += 7) v[j] = '\0';  // NUL bytes for sure
    return v;
}

std::vector<std::string> keys_of(uint64_t seed, uint64_t n) {
    std::vector<std::string> keys;
    for (uint64_t i = 0; i < n; ++i) keys.push_back(key_of(seed, i));
    return keys;
}

void fail(const std::string& what) { throw Error("check failed: " + what); }

nlohmann::json stats(const RedisCluster& c) {
    return {{"cluster", c.is_cluster()},         {"masters", c.masters().size()},
            {"round_trips", c.round_trips()},     {"commands", c.commands()},
            {"redirects", c.redirects()}};
}

void fill(RedisCluster& c, uint64_t seed, uint64_t n) {
    std::vector<std::pair<std::string, std::string>> kv;
    for (uint64_t i = 0; i < n; ++i) {
        kv.emplace_back(key_of(seed, i), value_of(seed, i));
        if (kv.size() == 1000 || i + 1 == n) {
            c.set(kv);
            kv.clear();
        }
    }
}

// Every key present with its value; returns how many were checked.
void verify(RedisCluster& c, uint64_t seed, uint64_t n) {
    auto keys = keys_of(seed, n);
    auto values = c.get(keys);
    for (uint64_t i = 0; i < n; ++i) {
        if (!values[i]) fail("key " + std::to_string(i) + " (" + printable(keys[i]) + ") is missing");
        if (*values[i] != value_of(seed, i))
            fail("key " + std::to_string(i) + ": " + std::to_string(values[i]->size()) + " bytes differ from the " +
                 std::to_string(value_of(seed, i).size()) + " written");
    }
    // get_each (values handed over from inside the reader): each key once, with its value,
    // with a missing key between every two present ones.
    std::vector<std::string> each;
    for (uint64_t i = 0; i < n; ++i) {
        each.push_back(keys[i]);
        each.push_back(keys[i] + ":absent");  // same hash tag, when there is one
    }
    std::vector<int> seen(each.size(), 0);
    std::string wrong;
    c.get_each(each, [&](size_t k, std::string_view v) {
        ++seen[k];
        if (k % 2 || v != value_of(seed, k / 2)) wrong = "get_each: a wrong value for key " + std::to_string(k);
    });
    if (!wrong.empty()) fail(wrong);
    for (size_t k = 0; k < each.size(); ++k)
        if (seen[k] != (k % 2 ? 0 : 1))
            fail("get_each gave key " + std::to_string(k) + " " + std::to_string(seen[k]) + " times");
    auto there = c.exists(keys);
    for (uint64_t i = 0; i < n; ++i)
        if (!there[i]) fail("EXISTS says key " + std::to_string(i) + " is missing");
}

int cmd_cycle(const PoolUrl& url, const ClientOptions& opt, uint64_t seed, uint64_t n) {
    RedisCluster c(url, opt);
    auto keys = keys_of(seed, n);
    c.del(keys);
    fill(c, seed, n);
    verify(c, seed, n);

    // Every master holds some (with enough keys), and node_for agrees with where they are.
    std::vector<std::string> used;
    for (const auto& k : keys) used.push_back(c.node_for(k));
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    if (n >= 300 && g_tag.empty() && used.size() != c.masters().size())
        fail("keys use " + std::to_string(used.size()) + " of " + std::to_string(c.masters().size()) + " masters");

    // Missing keys: nil and false, in the caller's order among present ones.
    std::vector<std::string> mixed = {keys[0], key_of(seed + 1, 0), keys[1], key_of(seed + 1, 1)};
    auto got = c.get(mixed);
    if (!got[0] || got[1] || !got[2] || got[3]) fail("GET of present and missing keys");
    auto ex = c.exists(mixed);
    if (!ex[0] || ex[1] || !ex[2] || ex[3]) fail("EXISTS of present and missing keys");

    // SCAN finds exactly the keys written.
    auto found = c.scan(kPrefix + "*");
    auto sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    if (found != sorted) fail("SCAN found " + std::to_string(found.size()) + " keys, " + std::to_string(n) + " written");

    // NX leaves existing keys alone.
    c.set({{keys[0], "other"}, {key_of(seed + 2, 0), "new"}}, true);
    if (*c.get({keys[0]})[0] != value_of(seed, 0)) fail("SET NX replaced an existing key");
    if (c.get({key_of(seed + 2, 0)})[0] != std::optional<std::string>("new")) fail("SET NX did not set a new key");
    c.del({key_of(seed + 2, 0), key_of(seed + 3, 0)});  // one missing: fine

    // Leases.
    std::string lock = "pooltest:lock:{x}";
    c.del({lock});
    if (!c.set_nx_px(lock, "me", 300)) fail("set_nx_px on a free lock");
    if (c.set_nx_px(lock, "you", 300)) fail("set_nx_px on a held lock");
    if (!c.pexpire(lock, 300)) fail("pexpire on a held lock");
    if (c.pexpire("pooltest:nolock", 300)) fail("pexpire on a missing key");
    std::this_thread::sleep_for(std::chrono::milliseconds(450));
    if (!c.set_nx_px(lock, "you", 300)) fail("set_nx_px after the lease expired");
    c.del({lock});

    int acked = c.wait_replicas(0, 100);

    // DEL: half, then the rest.
    std::vector<std::string> half(keys.begin(), keys.begin() + n / 2), rest(keys.begin() + n / 2, keys.end());
    c.del(half);
    auto ex2 = c.exists(keys);
    for (uint64_t i = 0; i < n; ++i)
        if (ex2[i] != (i >= n / 2)) fail("after deleting half, key " + std::to_string(i));
    if (c.scan(kPrefix + "*").size() != rest.size()) fail("SCAN after deleting half");
    c.del(rest);
    if (!c.scan(kPrefix + "*").empty()) fail("SCAN after deleting all");

    nlohmann::json j = stats(c);
    j["keys"] = n;
    j["nodes_used"] = used.size();
    j["wait_replicas"] = acked;
    cli::print_json(j);
    return 0;
}

int cmd_fill(const PoolUrl& url, const ClientOptions& opt, uint64_t seed, uint64_t n) {
    RedisCluster c(url, opt);
    fill(c, seed, n);
    nlohmann::json j = stats(c);
    j["keys"] = n;
    cli::print_json(j);
    return 0;
}

int cmd_verify(const PoolUrl& url, const ClientOptions& opt, uint64_t seed, uint64_t n, const std::string& wait_file,
               bool pre_verify) {
    RedisCluster c(url, opt);
    if (pre_verify) verify(c, seed, n);
    if (!wait_file.empty()) {
        std::ofstream(wait_file + ".ready") << "ready\n";
        for (int i = 0; i < 3000 && ::access(wait_file.c_str(), F_OK) != 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto t0 = std::chrono::steady_clock::now();
    verify(c, seed, n);
    nlohmann::json j = stats(c);
    j["keys"] = n;
    j["verify_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    cli::print_json(j);
    return 0;
}

int cmd_connect(const PoolUrl& url, const ClientOptions& opt) {
    RedisCluster c(url, opt);
    const size_t connected = c.connect_masters();
    cli::print_json({{"connected", connected}, {"masters", c.masters().size()}, {"cluster", c.is_cluster()}});
    return 0;
}

int cmd_check_eviction(const PoolUrl& url, const ClientOptions& opt) {
    RedisCluster c(url, opt);
    c.check_no_eviction();
    cli::print_json({{"noeviction", true}, {"masters", c.masters().size()}});
    return 0;
}

// Latency p50 of single GETs and of pipelined batches of --depth keys; bandwidth as payload
// bytes over the wall time of the whole run; and SET bandwidth of a 256-key batch.
int cmd_bench(const PoolUrl& url, const ClientOptions& opt, int iterations, int depth) {
    RedisCluster c(url, opt);
    nlohmann::json j;
    for (size_t size : {size_t{4096}, size_t{65536}}) {
        const int nkeys = 256;
        std::string tag = size == 4096 ? "4k" : "64k";
        std::vector<std::pair<std::string, std::string>> kv;
        std::vector<std::string> keys;
        for (int i = 0; i < nkeys; ++i) {
            keys.push_back("pooltest:bench:" + tag + ":" + std::to_string(i));
            kv.emplace_back(keys.back(), std::string(size, static_cast<char>(i)));
        }
        // SET bandwidth: the whole key set as one batch (pipelines cut at 512 commands / 32 MiB).
        c.set(kv);  // warm connections to every node
        const int set_rounds = size == 4096 ? 40 : 8;
        auto set_start = std::chrono::steady_clock::now();
        for (int r = 0; r < set_rounds; ++r) c.set(kv);
        double set_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - set_start).count();
        j["set_" + tag + "_batch_gbps"] = std::round(double(size) * nkeys * set_rounds / set_secs / 1e9 * 1000) / 1000;
        for (int batch : {1, depth}) {
            std::vector<double> us;
            uint64_t bytes = 0;
            auto start = std::chrono::steady_clock::now();
            std::vector<std::string> ask(static_cast<size_t>(batch));
            for (int it = 0; it < iterations; ++it) {
                for (int b = 0; b < batch; ++b) ask[b] = keys[(it * batch + b) % nkeys];
                auto t0 = std::chrono::steady_clock::now();
                auto got = c.get(ask);
                auto t1 = std::chrono::steady_clock::now();
                us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                for (auto& g : got) {
                    if (!g || g->size() != size) fail("bench GET returned a wrong value");
                    bytes += g->size();
                }
            }
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::sort(us.begin(), us.end());
            std::string name = batch == 1 ? "get_" + tag : "pipelined_" + tag;
            j[name + "_p50_us"] = std::round(us[us.size() / 2] * 10) / 10;
            j[name + "_gbps"] = std::round(bytes / secs / 1e9 * 1000) / 1000;
        }
        c.del(keys);
    }
    j["pipeline_depth"] = depth;
    j["iterations"] = iterations;
    j["cluster"] = c.is_cluster();
    j["masters"] = c.masters().size();
    cli::print_json(j);
    return 0;
}

// A part of 64 chunks of 4 KiB (distinct bytes each) put into the pool, then read by two
// PartReaders with an 8-chunk read-ahead: one chunk at a time in a scattered order (no read is
// in or next to the chunk the previous one ended in), then every chunk in order. Every byte
// is compared. One JSON object: what each fetched on demand and ahead.
int cmd_readahead(const PoolUrl& url, const ClientOptions& opt) {
    constexpr uint32_t kChunk = 4096;
    constexpr size_t kChunks = 64;
    std::vector<std::byte> data(kChunks * kChunk);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < data.size(); i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::memcpy(data.data() + i, &x, 8);
    }
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    std::vector<ChunkRef> refs;
    std::vector<std::pair<ChunkId, std::string>> values;
    for (size_t i = 0; i < kChunks; ++i) {
        const std::byte* p = data.data() + i * kChunk;
        std::string v = encode_value(p, kChunk, 1, cctx);
        refs.push_back({chunk_id(p, kChunk), kChunk, static_cast<uint32_t>(v.size())});
        values.emplace_back(refs.back().id, std::move(v));
    }
    ZSTD_freeCCtx(cctx);
    ChunkStore(url, opt).put(values);
    ReadOptions ro;
    ro.client = opt;
    ro.prefetch_chunks = 8;
    auto read = [&](PartReader& r, size_t i) {
        std::vector<std::byte> b(kChunk);
        r.read(i * kChunk, kChunk, b.data());
        if (std::memcmp(b.data(), data.data() + i * kChunk, kChunk) != 0) fail("chunk " + std::to_string(i) + " read back wrong");
    };
    auto report = [](const ReadStats& s) {
        return nlohmann::json{{"demand_fetches", s.demand_fetches}, {"prefetched_chunks", s.prefetched_chunks},
                              {"prefetch_hits", s.prefetch_hits}};
    };
    nlohmann::json j;
    {
        PartReader r(url, refs, ro);
        for (size_t i : {40, 3, 57, 21, 10, 33, 62, 0}) read(r, i);
        j["scattered"] = report(r.stats());
    }
    {
        PartReader r(url, refs, ro);
        for (size_t i = 0; i < kChunks; ++i) {
            read(r, i);
            // After the second read (the first that continues another), give the read-ahead
            // thread up to 5 s to fetch, so a loaded machine that runs it late cannot let the
            // scan fetch every chunk itself.
            for (int w = 0; i == 1 && w < 5000 && r.stats().prefetched_chunks == 0; ++w)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        j["scan"] = report(r.stats());
    }
    j["chunks"] = kChunks;
    cli::print_json(j);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Drive the pool tier's Redis (Cluster) client against live servers", "pooltool"};
    app.require_subcommand(1);
    cli::CommonOptions common;
    std::string url_text, wait_file;
    uint64_t keys = 3000, seed = 1;
    int connect_ms = 2000, io_ms = 5000, iterations = 2000, depth = 16;
    bool pre_verify = false;
    std::vector<std::string> slot_keys;
    auto url_opts = [&](CLI::App* s) {
        s->add_option("--url", url_text, "redis://HOST:PORT[,HOST:PORT...][/NAMESPACE]")->required();
        s->add_option("--connect-timeout-ms", connect_ms)->capture_default_str();
        s->add_option("--io-timeout-ms", io_ms)->capture_default_str();
    };
    auto key_opts = [&](CLI::App* s) {
        s->add_option("--keys", keys, "How many keys")->capture_default_str();
        s->add_option("--seed", seed, "Key and value seed")->capture_default_str();
        s->add_option("--tag", g_tag, "ASCII keys, all in the hash slot of {TAG}");
    };
    auto* cycle = app.add_subcommand("cycle", "set/get/exists/del/scan/NX/lease round trip");
    auto* fillc = app.add_subcommand("fill", "Write the key set");
    auto* verifyc = app.add_subcommand("verify", "Read the key set back and compare");
    auto* evict = app.add_subcommand("check-eviction", "Fail unless every master is noeviction");
    auto* bench = app.add_subcommand("bench", "GET latency and bandwidth, one JSON object");
    auto* slot = app.add_subcommand("slot", "Print the hash slot of each key");
    auto* readahead = app.add_subcommand("readahead", "A pool part's reads: scattered, then a scan");
    auto* connect = app.add_subcommand("connect", "Connect to every master now; how many answered");
    for (auto* s : {cycle, fillc, verifyc, evict, bench, readahead, connect}) url_opts(s);
    for (auto* s : {cycle, fillc, verifyc}) key_opts(s);
    verifyc->add_option("--wait-file", wait_file, "Touch FILE.ready, wait for FILE, then verify");
    verifyc->add_flag("--pre-verify", pre_verify, "Verify once before waiting too (connects to every node)");
    bench->add_option("--iterations", iterations, "GET calls per size and depth")->capture_default_str();
    bench->add_option("--depth", depth, "Keys per pipelined GET")->capture_default_str();
    slot->add_option("keys", slot_keys)->required();
    return cli::run_tool("pooltool", app, argc, argv, common, [&]() -> int {
        if (slot->parsed()) {
            for (const auto& k : slot_keys) std::printf("%d\n", key_slot(k));
            return 0;
        }
        PoolUrl url = parse_pool_url(url_text);
        ClientOptions opt{connect_ms, io_ms};
        if (cycle->parsed()) return cmd_cycle(url, opt, seed, keys);
        if (fillc->parsed()) return cmd_fill(url, opt, seed, keys);
        if (verifyc->parsed()) return cmd_verify(url, opt, seed, keys, wait_file, pre_verify);
        if (evict->parsed()) return cmd_check_eviction(url, opt);
        if (readahead->parsed()) return cmd_readahead(url, opt);
        if (connect->parsed()) return cmd_connect(url, opt);
        return cmd_bench(url, opt, iterations, depth);
    });
}

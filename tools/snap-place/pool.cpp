// SPDX-License-Identifier: Apache-2.0
// snap-place --pool URL: the pool's snapshots (list, remove, fetch a manifest), collection of
// unreferenced chunks, and a calibration of the pool's costs for the cost model.
#include "place.hpp"

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/hash.hpp"
#include "common/pool/store.hpp"
#include "common/tier.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace snap::place_tool {

namespace {

double now_us() {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Fetch cost of the pool as the restore sees it: single GETs of one chunk (a fault's round
// trip, median) and pipelined GETs of many (read-ahead and hot parts: bandwidth), with values
// of the given size, on keys spread over every node. Removes its keys afterwards.
nlohmann::json calibrate(pool::RedisCluster& c, const std::string& ns, uint32_t chunk_bytes) {
    std::mt19937_64 rng(42);
    const std::string tag = ns + ":calibrate:" + std::to_string(::getpid()) + ":";
    const int keys = 64, rounds = 400, pipeline = 64;
    std::string value(chunk_bytes, '\0');
    for (auto& ch : value) ch = static_cast<char>(rng());
    std::vector<std::pair<std::string, std::string>> kv;
    std::vector<std::string> names;
    for (int i = 0; i < keys; ++i) {
        names.push_back(tag + std::to_string(i));
        kv.emplace_back(names.back(), value);
    }
    struct Drop {
        pool::RedisCluster& c;
        std::vector<std::string>& n;
        ~Drop() {
            try {
                c.del(n);
            } catch (...) {
            }
        }
    } drop{c, names};
    c.set(kv);
    std::vector<double> lat;
    for (int r = 0; r < rounds; ++r) {
        double t0 = now_us();
        auto v = c.get({names[static_cast<size_t>(r) % names.size()]});
        lat.push_back(now_us() - t0);
        if (!v[0] || v[0]->size() != chunk_bytes) throw Error("pool calibration: a value came back wrong");
    }
    std::sort(lat.begin(), lat.end());
    std::vector<std::string> batch;
    for (int i = 0; i < pipeline; ++i) batch.push_back(names[static_cast<size_t>(i) % names.size()]);
    double t0 = now_us();
    uint64_t bytes = 0;
    for (int r = 0; r < rounds / 8; ++r)
        for (auto& v : c.get(batch)) bytes += v ? v->size() : 0;
    const double gbps = static_cast<double>(bytes) / ((now_us() - t0) * 1000.0);
    const double p50 = lat[lat.size() / 2], p99 = lat[lat.size() * 99 / 100];
    return {{"pool", {{"read_gbps", std::round(gbps * 100) / 100}, {"random_read_us", std::round(p50 * 10) / 10}}},
            {"measured", {{"chunk_bytes", chunk_bytes}, {"get_p50_us", std::round(p50 * 10) / 10},
                          {"get_p99_us", std::round(p99 * 10) / 10}, {"pipelined_gbps", std::round(gbps * 100) / 100},
                          {"pipeline_gets", pipeline}, {"nodes", c.masters().size()}, {"cluster", c.is_cluster()}}}};
}

}  // namespace

int run_pool(const Options& opt) {
    const int modes = int(opt.list) + int(opt.collect) + int(opt.calibrate) + int(!opt.remove.empty()) + int(!opt.fetch.empty());
    if (modes != 1) throw UsageError("--pool needs exactly one of --list, --remove, --collect, --fetch, --calibrate");
    if (!opt.split.empty()) throw UsageError("--pool manages a pool: no split is placed", "drop " + opt.split + ", or drop --pool");
    const pool::PoolUrl url = pool::parse_pool_url(opt.pool);
    pool::ChunkStore store(url);
    nlohmann::json j = {{"pool_url", url.text}};
    std::string text;
    if (opt.list) {
        nlohmann::json arr = nlohmann::json::array();
        for (auto& m : store.list()) {
            arr.push_back({{"digest", hash::to_hex(m.digest)}, {"names", m.names}, {"chunks", m.ids.size()}});
            std::string names;
            for (auto& n : m.names) names += (names.empty() ? "" : ",") + n;
            text += hash::to_hex(m.digest) + "  " + std::to_string(m.ids.size()) + " chunks" + (names.empty() ? "" : "  " + names) + "\n";
        }
        j["manifests"] = arr;
        if (arr.empty()) text = "no manifests in " + url.text + "\n";
    } else if (!opt.remove.empty()) {
        auto rm = store.remove(opt.remove);
        if (!rm.digest) throw UsageError(url.text + ": no manifest " + opt.remove, "snap-place --pool " + url.text + " --list");
        const std::string d = hash::to_hex(*rm.digest);
        j["removed"] = opt.remove;
        j["digest"] = d;
        j["unregistered"] = rm.unregistered;
        j["kept_by"] = rm.kept_names;
        if (rm.unregistered) {
            text = "removed " + d + " (its chunks go at the next --collect)\n";
        } else {
            std::string names;
            for (auto& n : rm.kept_names) names += (names.empty() ? "" : ", ") + n;
            text = "removed the name " + opt.remove + "; " + d + " stays registered under " + names + "\n";
        }
    } else if (!opt.fetch.empty()) {
        if (opt.common.output.empty()) throw UsageError("--fetch needs -o FILE (or -o -)");
        auto bytes = store.fetch_manifest(opt.fetch);
        if (!bytes) throw UsageError(url.text + ": no manifest " + opt.fetch, "snap-place --pool " + url.text + " --list");
        file::AtomicOutput out(opt.common.output);
        out.write(bytes->data(), bytes->size());
        const bool unchanged = out.commit();
        j["fetched"] = opt.fetch;
        j["output"] = opt.common.output;
        j["output_unchanged"] = unchanged;
        j["manifest_bytes"] = bytes->size();
        text = "fetched " + opt.fetch + " -> " + opt.common.output + "\n";
        if (opt.common.output == "-") {
            if (opt.common.json) throw UsageError("--json and -o - both want stdout");
            return 0;
        }
    } else if (opt.collect) {
        auto st = store.collect();
        j.update({{"registered_manifests", st.manifests}, {"leases", st.leases}, {"live_chunks", st.live_chunks},
                  {"seen_chunks", st.chunks_seen}, {"deleted_chunks", st.chunks_deleted}});
        text = "collected " + url.text + ": " + std::to_string(st.chunks_deleted) + " of " + std::to_string(st.chunks_seen) +
               " chunks deleted; " + std::to_string(st.live_chunks) + " named by " + std::to_string(st.manifests) +
               " manifests and " + std::to_string(st.leases) + " placements in progress\n";
    } else {
        uint64_t chunk = opt.chunk_size.empty() ? pool::kDefaultChunkBytes : tier::parse_size(opt.chunk_size);
        if (chunk == 0 || chunk > pool::kMaxChunkBytes) throw UsageError("--chunk-size is between one page and 4M");
        auto m = calibrate(store.client(), url.ns, static_cast<uint32_t>(chunk));
        // The product is a cost file (snap-place --cost-file FILE): {"pool": {...}} alone,
        // whatever --json says; what was measured goes to stderr.
        // With -o the cost file goes there and the report to stdout (JSON with --json); without
        // -o the cost file is the product on stdout, unless --json asks for the report.
        nlohmann::json cost = {{"pool", m["pool"]}};
        if (!opt.common.output.empty()) file::write_report(opt.common.output, cost.dump(2) + "\n");
        nlohmann::json report = {{"pool_url", url.text}, {"cost", cost}, {"measured", m["measured"]}};
        if (opt.common.json) cli::print_report(opt.common.report, report);
        else if (opt.common.output.empty()) cli::print_json(cost);
        else cli::print_text("pool " + url.text + ": " + m["measured"].dump() + "\n");
        return 0;
    }
    if (opt.common.json) cli::print_report(opt.common.report, j);
    else if (!opt.common.report.empty()) cli::print_report(opt.common.report, text);
    else cli::print_text(text);
    return 0;
}

}  // namespace snap::place_tool

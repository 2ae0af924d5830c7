// SPDX-License-Identifier: Apache-2.0
#include "place.hpp"

#include "common/costmodel.hpp"
#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/placed.hpp"
#include "common/split.hpp"
#include "common/tier.hpp"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace snap::place_tool {

namespace {

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) throw UsageError("--tiers '" + s + "': an empty tier name", "e.g. --tiers dram,file:/ssd");
        // A pool URL lists its seeds with commas (redis://A:1,B:2/NS): a seed continues the URL
        // until the one that carries the namespace.
        const bool open_url = !out.empty() && out.back().rfind("redis://", 0) == 0 && out.back().find('/', 8) == std::string::npos;
        const bool kind = item.rfind("dram", 0) == 0 || item.rfind("numa:", 0) == 0 || item.rfind("dax:", 0) == 0 ||
                          item.rfind("file:", 0) == 0 || item.rfind("redis://", 0) == 0;
        if (open_url && !kind) {
            out.back() += "," + item;
            continue;
        }
        out.push_back(item);
    }
    if (out.empty()) throw UsageError("--tiers: an empty list", "e.g. --tiers dram,file:/ssd");
    return out;
}

// Add t to the set unless a tier of the same name is there; returns its index.
int add_tier(std::vector<tier::TierSpec>& set, tier::TierSpec t) {
    for (size_t i = 0; i < set.size(); ++i) {
        if (set[i].name() != t.name()) continue;
        if (set[i].location != t.location)
            throw UsageError("tier " + t.name() + " is given with two directories (" + set[i].location + ", " + t.location + ")");
        return static_cast<int>(i);
    }
    set.push_back(std::move(t));
    return static_cast<int>(set.size() - 1);
}

// Which tiers does a --budget/--cost key name? A kind ("dax") or a tier spelling ("dax:/x").
std::vector<size_t> tiers_named(const std::vector<tier::TierSpec>& set, const std::string& key, const std::string& staging) {
    std::vector<size_t> hits;
    std::optional<tier::TierSpec> spec;
    if (key.find(':') != std::string::npos) {
        spec = tier::parse_tier(key);
        char buf[PATH_MAX];
        if (!spec->location.empty() && ::realpath(spec->location.c_str(), buf)) spec->location = buf;
    }
    for (size_t i = 0; i < set.size(); ++i) {
        if (!spec) {
            if (key == tier::kind_name(set[i].kind)) hits.push_back(i);
        } else if (spec->kind == set[i].kind && spec->node == set[i].node &&
                   (spec->location.empty() || spec->location == set[i].location)) {
            hits.push_back(i);
        }
    }
    (void)staging;
    return hits;
}

PageClass parse_class(const std::string& s) {
    if (s == "rw") return PageClass::rw;
    if (s == "ro") return PageClass::ro;
    if (s == "cold") return PageClass::cold;
    if (s == "zero") throw UsageError("zero pages need no storage: they become anonymous memory at restore");
    throw UsageError("unknown class '" + s + "'", "classes are rw, ro and cold");
}

nlohmann::json outcome_json(const placed::PlaceResult& r, const placed::Manifest& m) {
    nlohmann::json parts = nlohmann::json::array();
    for (size_t i = 0; i < m.parts.size(); ++i) {
        auto& p = m.parts[i];
        nlohmann::json j = {{"class", class_name(p.cls)},
                            {"tier", m.tiers[p.tier].name()},
                            {"path", p.path},
                            {"raw_bytes", p.raw_bytes},
                            {"stored_bytes", p.stored_bytes},
                            {"digest", hash::to_hex(p.digest)},
                            {"compression", placed::compression_name(p.compression)}};
        j["layout_path"] = p.layout_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.layout_path);
        if (i < r.outcomes.size()) {
            auto& oc = r.outcomes[i];
            j["reused"] = oc.reused;
            if (!p.layout_path.empty()) j["layout_reused"] = oc.layout_reused;
            if (p.compression == placed::Compression::chunks)
                j["pool"] = {{"chunk_bytes", p.frame_bytes},     {"chunks", oc.chunks},
                             {"distinct_chunks", oc.distinct_chunks}, {"uploaded_chunks", oc.chunks_uploaded},
                             {"present_chunks", oc.chunks_present},   {"uploaded_bytes", oc.bytes_uploaded},
                             {"present_bytes", oc.bytes_present}};
        }
        parts.push_back(j);
    }
    return parts;
}

}  // namespace

int run(const Options& opt) {
    if (opt.split.empty()) throw UsageError("no split given", "snap-place SPLIT -o PLACED [--tier CLASS=TIER ...]");
    if (opt.list || opt.collect || opt.calibrate || !opt.remove.empty() || !opt.fetch.empty())
        throw UsageError("--list, --remove, --collect, --fetch and --calibrate need --pool URL");
    const std::string& out = opt.common.output;
    if (out.empty() && !opt.dry_run) throw UsageError("no output given", "use -o FILE (or --dry-run to see the estimate)");
    if (out == "-" && opt.common.json && opt.common.report.empty())
        throw UsageError("--json and -o - both want stdout", "write the placed artifact to a file with -o FILE");
    if (out == "-" && opt.staging.empty())
        throw UsageError("with -o - the dram/numa parts need a directory", "give --staging DIR");

    placed::PlaceRequest req;
    for (auto& c : opt.cost) req.params.set(c);
    if (!opt.cost_file.empty()) {
        struct stat st {};
        if (::stat(opt.cost_file.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
            throw UsageError(opt.cost_file + ": the cost file is not a regular file");
        if (st.st_size > (1 << 20)) throw UsageError(opt.cost_file + ": the cost file is larger than 1 MiB");
        std::ifstream f(opt.cost_file);
        if (!f) throw UsageError(opt.cost_file + ": cannot read the cost file");
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(f);
        } catch (const std::exception& e) {
            throw UsageError(opt.cost_file + ": not valid JSON");
        }
        req.params.apply_json(j, opt.cost_file);
        for (auto& c : opt.cost) req.params.set(c);  // the command line wins over the file
    }
    req.compress = opt.compress;
    req.layout = !opt.no_layout;
    req.zstd_level = opt.zstd_level;
    req.pool_name = opt.name;
    req.pool_replicas = opt.pool_replicas;
    if (!opt.name.empty() && !pool::valid_name(opt.name))
        throw UsageError("--name '" + opt.name + "': a name is 1-128 characters of A-Z a-z 0-9 . _ -");

    const std::string out_dir = out.empty() || out == "-" ? "." : dir_of(out);
    const std::string staging = opt.staging.empty() ? out_dir : opt.staging;

    // The candidate set: --tiers, or the default; then the tiers the user fixed classes to.
    std::vector<tier::TierSpec> set;
    std::vector<std::string> specs;
    for (auto& t : opt.tiers)
        for (auto& s : split_commas(t)) specs.push_back(s);
    if (specs.empty()) specs = {"dram", "file:" + out_dir};
    auto parse = [](const std::string& text) {
        auto t = tier::parse_tier(text);
        if (t.kind == tier::TierKind::pool) t.location = pool::parse_pool_url(t.location).text;  // one spelling
        return t;
    };
    for (auto& s : specs) {
        auto t = parse(s);
        tier::resolve_location(t, staging);
        add_tier(set, std::move(t));
    }
    for (auto& a : opt.tier) {
        auto eq = a.find('=');
        if (eq == std::string::npos) throw UsageError("--tier '" + a + "': expected CLASS=TIER", "e.g. --tier rw=dram");
        PageClass c = parse_class(a.substr(0, eq));
        auto t = parse(a.substr(eq + 1));
        tier::resolve_location(t, staging);
        int ci = static_cast<int>(c);
        if (req.fixed[ci] >= 0) throw UsageError("class " + a.substr(0, eq) + " is given --tier twice");
        req.fixed[ci] = add_tier(set, std::move(t));
    }
    for (auto& b : opt.budget) {
        auto eq = b.rfind('=');
        if (eq == std::string::npos) throw UsageError("--budget '" + b + "': expected TIER=SIZE", "e.g. --budget dram=64M");
        std::string key = b.substr(0, eq);
        auto hits = tiers_named(set, key, staging);
        if (hits.empty()) throw UsageError("--budget " + key + ": no such tier in use", "name a tier given with --tiers or --tier");
        if (hits.size() > 1) throw UsageError("--budget " + key + " names several tiers", "give the full tier name, e.g. dax:/path");
        set[hits[0]].budget_bytes = tier::parse_size(b.substr(eq + 1));
    }
    req.tiers = set;

    SplitReader split(opt.split);
    const uint32_t ps = split.page_size();
    const auto& plan = split.plan();
    // Frame and chunk sizes default to 64K and 16K, or one page where pages are larger (2 MiB
    // hugepage snapshots): a default that works for every split.
    uint64_t frame = opt.frame_size.empty() ? std::max<uint64_t>(placed::kDefaultFrameBytes, ps) : tier::parse_size(opt.frame_size);
    if (frame > placed::kMaxFrameBytes) throw UsageError("--frame-size is at most 64M");
    req.frame_bytes = static_cast<uint32_t>(frame);
    uint64_t chunk = opt.chunk_size.empty() ? std::max<uint64_t>(pool::kDefaultChunkBytes, ps) : tier::parse_size(opt.chunk_size);
    if (chunk == 0 || chunk > pool::kMaxChunkBytes) throw UsageError("--chunk-size is between one page and 4M");
    req.chunk_bytes = static_cast<uint32_t>(chunk);

    placed::PlaceResult res;
    cost::Estimate est;
    if (opt.dry_run) {
        auto choice = cost::choose(req.params, req.tiers, plan.pages_per_class, req.fixed, ps);
        std::vector<cost::ClassPlacement> pl;
        for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
            int ci = static_cast<int>(c);
            if (!plan.pages_per_class[ci]) continue;
            uint64_t bytes = plan.pages_per_class[ci] * uint64_t{ps};
            pl.push_back({c, plan.pages_per_class[ci], bytes, bytes, 0, &req.tiers[choice[ci]]});
        }
        est = cost::estimate(req.params, pl, cost::count_zero_touches(plan), plan.pages_per_class[0], ps);
    } else {
        uint64_t total = 0;
        for (int c = 1; c < kPageClasses; ++c) total += plan.pages_per_class[c] * ps;
        cli::Progress progress("placing", total, "bytes");
        res = placed::place(split, req, out, [&](uint64_t done, uint64_t) { progress.update(done); });
        progress.finish();
        est = res.estimate;
        for (auto& oc : res.outcomes)
            cli::info(std::string(class_name(oc.cls)) + ": " + (oc.reused ? "kept " : "wrote ") + oc.path);
        if (res.replaced)
            cli::note("the name " + opt.name + " named " + hash::to_hex(*res.replaced) +
                      " before; it stays registered (its chunks stay) until snap-place --pool URL --remove " +
                      hash::to_hex(*res.replaced));
    }

    if (opt.common.json) {
        nlohmann::json tiers = nlohmann::json::array();
        for (auto& t : req.tiers) {
            nlohmann::json j = {{"name", t.name()}, {"tier_kind", tier::kind_name(t.kind)}, {"location", t.location}};
            j["budget_bytes"] = t.budget_bytes == tier::kUnlimited ? nlohmann::json(nullptr) : nlohmann::json(t.budget_bytes);
            if (t.node >= 0) j["node"] = t.node;
            tiers.push_back(j);
        }
        nlohmann::json j = {{"split", opt.split},
                            {"split_digest", hash::to_hex(split.digest())},
                            {"image_pages", plan.image.pages()},
                            {"zero_pages", plan.pages_per_class[0]}, {"ro_pages", plan.pages_per_class[1]},
                            {"rw_pages", plan.pages_per_class[2]}, {"cold_pages", plan.pages_per_class[3]},
                            {"page_size_bytes", ps},
                            {"tiers", tiers},
                            {"estimate", est.to_json()},
                            {"cost_params", req.params.to_json()},
                            {"dry_run", opt.dry_run}};
        if (!opt.dry_run) {
            j["output"] = out;
            j["output_unchanged"] = res.output_unchanged;
            j["digest"] = hash::to_hex(res.digest);
            j["parts"] = outcome_json(res, res.manifest);
            if (!opt.name.empty()) {
                j["name"] = opt.name;
                j["replaced"] = res.replaced ? nlohmann::json(hash::to_hex(*res.replaced)) : nlohmann::json(nullptr);
            }
        }
        cli::print_report(opt.common.report, j);
    } else {
        std::string text = (opt.dry_run ? "estimate (dry run, nothing written):\n"
                                        : "placed " + opt.split + " -> " + out + (res.output_unchanged ? " (unchanged)" : "") + "\n");
        if (!opt.dry_run)
            for (size_t i = 0; i < res.manifest.parts.size(); ++i) {
                auto& p = res.manifest.parts[i];
                auto& oc = res.outcomes[i];
                if (p.compression == placed::Compression::chunks)
                    text += "  " + std::string(class_name(p.cls)) + " -> " + p.path + " (" + std::to_string(oc.chunks) + " chunks, " +
                            std::to_string(oc.distinct_chunks) + " distinct: " + std::to_string(oc.chunks_uploaded) + " uploaded (" +
                            tier::format_size(oc.bytes_uploaded) + "), " + std::to_string(oc.chunks_present) +
                            " already in the pool (" + tier::format_size(oc.bytes_present) + "))\n";
                else
                    text += "  " + std::string(class_name(p.cls)) + " -> " + p.path + " (" + tier::format_size(p.stored_bytes) +
                            (oc.reused ? ", already there" : "") + ")\n";
                if (!p.layout_path.empty()) text += "     and in image order (sparse, for tiered): " + p.layout_path + "\n";
            }
        text += est.to_text();
        if (!opt.common.report.empty()) cli::print_report(opt.common.report, text);
        else if (out == "-") cli::note(text);  // the artifact owns stdout
        else cli::print_text(text);
    }
    return 0;
}

}  // namespace snap::place_tool

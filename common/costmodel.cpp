// SPDX-License-Identifier: Apache-2.0
// The cost model: defaults from FACTS.md, overrides, per-class estimates, and the choice of
// tiers under budgets.
#include "costmodel.hpp"

#include "error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace snap::cost {

using tier::TierKind;

Params Params::defaults() {
    Params p;
    // dram: large memcpy 15.4 GB/s (0.27 µs/page); a staging file in tmpfs/page cache maps
    // at 0.3 µs/page (tmpfs, 16 pages per fault); scattered 4 KiB memcpy 0.45-0.65 µs.
    p.of(TierKind::dram) = {15.4, 0.3, 0.55, 1.0};
    // numa:N: memory of another node; on this one-node machine the same figures as dram.
    p.of(TierKind::numa) = {15.4, 0.3, 0.55, 1.0};
    // dax (CXL-like): not measured here (a tmpfs stands in and measures like DRAM); assumed
    // half DRAM's bandwidth and twice its latency, at half its price.
    p.of(TierKind::dax) = {7.7, 0.3, 1.1, 0.5};
    // file (SSD / virtio disk): cold sequential 3.3 GB/s, cold random 4 KiB read 37 µs.
    // Not byte-addressable in the model: map_us is unused.
    p.of(TierKind::file) = {3.3, 48, 37, 0.05};
    // pool (redis-server on loopback, FACTS.md): 64 KiB GETs pipelined 1.7 GB/s, a 16 KiB
    // GET round trip ~20 µs; shared by many hosts and deduplicated, so the cheapest capacity.
    // `snap-place --pool URL --calibrate` measures both on the real pool. Not byte-addressable.
    p.of(TierKind::pool) = {1.7, 0, 20, 0.02};
    return p;
}

namespace {

double* field(Params& p, const std::string& group, const std::string& name) {
    if (group == "restore") {
        auto& r = p.restore;
        if (name == "install_us") return &r.install_us;
        if (name == "uffd_fault_us") return &r.uffd_fault_us;
        if (name == "anon_fault_us") return &r.anon_fault_us;
        if (name == "zero_read_us") return &r.zero_read_us;
        if (name == "decompress_gbps") return &r.decompress_gbps;
        return nullptr;
    }
    if (group == "model") return name == "slack" ? &p.slack : nullptr;
    auto k = tier::kind_from_name(group);
    if (!k) return nullptr;
    auto& t = p.of(*k);
    if (name == "read_gbps") return &t.read_gbps;
    if (name == "map_us") return &t.map_us;
    if (name == "random_read_us") return &t.random_read_us;
    if (name == "price") return &t.price;
    return nullptr;
}

void set_field(Params& p, const std::string& group, const std::string& name, double v, const std::string& where) {
    double* f = field(p, group, name);
    if (!f)
        throw UsageError(where + ": unknown cost parameter '" + group + "." + name + "'",
                         "parameters: {dram,numa,dax,file,pool}.{read_gbps,map_us,random_read_us,price}, "
                         "restore.{install_us,uffd_fault_us,anon_fault_us,zero_read_us,decompress_gbps}, model.slack");
    if (!(v >= 0) || std::isinf(v)) throw UsageError(where + ": cost parameter " + group + "." + name + " must be >= 0");
    if ((name == "read_gbps" || name == "decompress_gbps") && v == 0)
        throw UsageError(where + ": " + group + "." + name + " must be > 0");
    *f = v;
}

}  // namespace

void Params::set(const std::string& a) {
    auto eq = a.find('=');
    auto dot = a.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
        throw UsageError("--cost '" + a + "': expected GROUP.PARAM=VALUE", "e.g. --cost dax.read_gbps=10");
    std::string val = a.substr(eq + 1);
    char* end = nullptr;
    double v = std::strtod(val.c_str(), &end);
    if (val.empty() || *end) throw UsageError("--cost '" + a + "': '" + val + "' is not a number");
    set_field(*this, a.substr(0, dot), a.substr(dot + 1, eq - dot - 1), v, "--cost");
}

void Params::apply_json(const nlohmann::json& j, const std::string& source) {
    if (!j.is_object()) throw UsageError(source + ": a cost file is one JSON object of groups");
    for (auto& [group, params] : j.items()) {
        if (!params.is_object()) throw UsageError(source + ": '" + group + "' must be an object of parameters");
        for (auto& [name, v] : params.items()) {
            if (!v.is_number()) throw UsageError(source + ": " + group + "." + name + " must be a number");
            set_field(*this, group, name, v.get<double>(), source);
        }
    }
}

nlohmann::json Params::to_json() const {
    nlohmann::json j;
    for (int k = 1; k <= tier::kTierKinds; ++k) {
        auto& t = of(static_cast<TierKind>(k));
        j[tier::kind_name(static_cast<TierKind>(k))] = {
            {"read_gbps", t.read_gbps}, {"map_us", t.map_us}, {"random_read_us", t.random_read_us}, {"price", t.price}};
    }
    j["restore"] = {{"install_us", restore.install_us},       {"uffd_fault_us", restore.uffd_fault_us},
                    {"anon_fault_us", restore.anon_fault_us}, {"zero_read_us", restore.zero_read_us},
                    {"decompress_gbps", restore.decompress_gbps}};
    j["model"] = {{"slack", slack}};
    return j;
}

ZeroTouches count_zero_touches(const SplitPlan& plan) {
    ZeroTouches z;
    for (auto& o : plan.order) {
        auto it = std::upper_bound(plan.runs.begin(), plan.runs.end(), o.page,
                                   [](uint64_t pg, const ClassRun& r) { return pg < r.start_page; });
        if (it == plan.runs.begin() || std::prev(it)->cls != PageClass::zero) continue;
        if (o.access & kAccessWrite) ++z.written;
        else ++z.read;
    }
    return z;
}

// bytes / (GB/s) in µs: 1 GB/s = 1000 bytes/µs.
static double transfer_us(double bytes, double gbps) { return bytes / (gbps * 1000.0); }

ClassEstimate estimate_class(const Params& p, const ClassPlacement& c, uint32_t ps) {
    ClassEstimate e;
    e.cls = c.cls;
    e.pages = c.pages;
    e.bytes = c.raw_bytes;
    e.stored_bytes = c.stored_bytes;
    if (!c.tier || c.pages == 0) {
        e.tier = c.tier ? c.tier->name() : "";
        e.mechanism = c.cls == PageClass::cold ? "on-demand" : "copy";
        return e;
    }
    const TierCost& t = p.of(c.tier->kind);
    const bool compressed = c.frame_bytes != 0;
    e.tier = c.tier->name();
    // Eager copy: read the stored bytes, decompress, install every page before resume.
    double copy_us = transfer_us(static_cast<double>(c.stored_bytes), t.read_gbps) +
                     (compressed ? transfer_us(static_cast<double>(c.raw_bytes), p.restore.decompress_gbps) : 0) +
                     static_cast<double>(c.pages) * p.restore.install_us;
    const bool mappable = tier::byte_addressable(c.tier->kind) && !compressed;
    switch (c.cls) {
        case PageClass::rw:
            e.mechanism = "copy";
            e.restore_us = copy_us;
            e.us_per_page = copy_us / static_cast<double>(c.pages);
            break;
        case PageClass::ro:
            if (mappable) {
                e.mechanism = "map";
                e.restore_us = static_cast<double>(c.pages) * t.map_us;
            } else {
                e.mechanism = "copy";
                e.restore_us = copy_us;
            }
            e.us_per_page = e.restore_us / static_cast<double>(c.pages);
            break;
        case PageClass::cold: {
            e.mechanism = "on-demand";
            // A fault reads one page (or decompresses its whole frame) and installs it.
            double per = p.restore.uffd_fault_us + t.random_read_us;
            if (compressed) per += transfer_us(static_cast<double>(c.frame_bytes), p.restore.decompress_gbps);
            e.us_per_page = per;
            e.drain_us = copy_us;
            break;
        }
        case PageClass::zero: break;
    }
    (void)ps;
    return e;
}

Estimate estimate(const Params& p, const std::vector<ClassPlacement>& parts, const ZeroTouches& zero,
                  uint64_t zero_pages, uint32_t ps) {
    Estimate est;
    ClassEstimate z;
    z.cls = PageClass::zero;
    z.mechanism = "anonymous";
    z.pages = zero_pages;
    z.bytes = zero_pages * ps;
    z.restore_us = static_cast<double>(zero.written) * p.restore.anon_fault_us +
                   static_cast<double>(zero.read) * p.restore.zero_read_us;
    z.us_per_page = zero.written + zero.read ? z.restore_us / static_cast<double>(zero.written + zero.read) : 0;
    est.classes.push_back(z);
    est.private_dram_bytes = zero.written * ps;
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        ClassPlacement cp;
        cp.cls = c;
        for (auto& part : parts)
            if (part.cls == c) cp = part;
        ClassEstimate e = estimate_class(p, cp, ps);
        est.restore_us += e.restore_us;
        if (cp.tier && cp.tier->kind == TierKind::dram) est.dram_bytes += cp.stored_bytes;
        if (c == PageClass::rw) est.private_dram_bytes += cp.raw_bytes;
        est.classes.push_back(e);
    }
    est.restore_us += z.restore_us;
    return est;
}

nlohmann::json Estimate::to_json() const {
    nlohmann::json cls = nlohmann::json::object();
    for (auto& e : classes) {
        nlohmann::json j = {{"tier", e.tier},           {"mechanism", e.mechanism},   {"class_pages", e.pages},
                            {"raw_bytes", e.bytes},         {"stored_bytes", e.stored_bytes},
                            {"restore_us", std::round(e.restore_us * 10) / 10},
                            {"per_page_us", std::round(e.us_per_page * 1000) / 1000}};
        if (e.cls == PageClass::cold) j["drain_us"] = std::round(e.drain_us * 10) / 10;
        cls[class_name(e.cls)] = j;
    }
    return {{"classes", cls},
            {"restore_us", std::round(restore_us * 10) / 10},
            {"dram_bytes", dram_bytes},
            {"private_dram_bytes", private_dram_bytes}};
}

std::string Estimate::to_text() const {
    std::ostringstream o;
    char line[256];
    std::snprintf(line, sizeof line, "  %-5s %-28s %-10s %10s %12s %12s\n", "class", "tier", "mechanism", "pages",
                  "restore us", "us/page");
    o << line;
    for (auto& e : classes) {
        std::string tier = e.tier.empty() ? (e.cls == PageClass::zero ? "-" : "(none)") : e.tier;
        if (tier.size() > 28) tier = "..." + tier.substr(tier.size() - 25);
        std::snprintf(line, sizeof line, "  %-5s %-28s %-10s %10llu %12.1f %12.3f%s\n", class_name(e.cls), tier.c_str(),
                      e.mechanism.c_str(), static_cast<unsigned long long>(e.pages), e.restore_us, e.us_per_page,
                      e.cls == PageClass::cold ? "  (per demand fault; off the critical path)" : "");
        o << line;
    }
    std::snprintf(line, sizeof line, "  restore %.1f us before the VM runs its loading set; dram parts %s; private DRAM after resume %s\n",
                  restore_us, tier::format_size(dram_bytes).c_str(), tier::format_size(private_dram_bytes).c_str());
    o << line;
    for (auto& e : classes)
        if (e.cls == PageClass::cold && e.pages) {
            std::snprintf(line, sizeof line, "  draining cold in the background would take %.1f us\n", e.drain_us);
            o << line;
        }
    return o.str();
}

std::array<int, kPageClasses> choose(const Params& p, const std::vector<tier::TierSpec>& tiers,
                                     const std::array<uint64_t, kPageClasses>& pages_per_class,
                                     const std::array<int, kPageClasses>& fixed, uint32_t ps) {
    std::array<int, kPageClasses> out;
    out.fill(-1);
    std::vector<uint64_t> left;
    for (auto& t : tiers) left.push_back(t.budget_bytes);
    auto bytes_of = [&](PageClass c) { return pages_per_class[static_cast<int>(c)] * uint64_t{ps}; };
    // The user's choices first: they must fit.
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        int i = fixed[static_cast<int>(c)];
        if (i < 0 || pages_per_class[static_cast<int>(c)] == 0) continue;
        uint64_t need = bytes_of(c);
        if (left[i] != tier::kUnlimited && need > left[i])
            throw UsageError(std::string(class_name(c)) + " needs " + tier::format_size(need) + ", tier " + tiers[i].name() +
                                 " has " + tier::format_size(left[i]) + " of budget left",
                             "raise --budget " + std::string(tier::kind_name(tiers[i].kind)) + "=SIZE or place " +
                                 class_name(c) + " elsewhere");
        if (left[i] != tier::kUnlimited) left[i] -= need;
        out[static_cast<int>(c)] = i;
    }
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        int ci = static_cast<int>(c);
        if (fixed[ci] >= 0 || pages_per_class[ci] == 0) continue;
        uint64_t need = bytes_of(c);
        struct Cand {
            int i;
            double restore, price, demand;
        };
        std::vector<Cand> cands;
        for (size_t i = 0; i < tiers.size(); ++i) {
            if (left[i] != tier::kUnlimited && need > left[i]) continue;
            ClassPlacement cp{c, pages_per_class[ci], need, need, 0, &tiers[i]};
            auto e = estimate_class(p, cp, ps);
            cands.push_back({static_cast<int>(i), e.restore_us, p.of(tiers[i].kind).price, e.us_per_page});
        }
        if (cands.empty()) {
            std::string have;
            for (size_t i = 0; i < tiers.size(); ++i)
                have += (have.empty() ? "" : ", ") + tiers[i].name() + " " + tier::format_size(left[i]) + " left";
            throw UsageError(std::string("no tier can hold ") + class_name(c) + " (" + tier::format_size(need) + "): " + have,
                             "add a tier with --tiers, or raise a --budget");
        }
        const Cand* best = nullptr;
        if (c == PageClass::cold) {
            for (auto& k : cands)
                if (!best || k.price < best->price || (k.price == best->price && k.demand < best->demand)) best = &k;
        } else {
            double fastest = std::numeric_limits<double>::infinity();
            for (auto& k : cands) fastest = std::min(fastest, k.restore);
            for (auto& k : cands) {
                if (k.restore > fastest * (1 + p.slack) + 1e-9) continue;
                if (!best || k.price < best->price || (k.price == best->price && k.restore < best->restore)) best = &k;
            }
        }
        out[ci] = best->i;
        if (left[best->i] != tier::kUnlimited) left[best->i] -= need;
    }
    return out;
}

}  // namespace snap::cost

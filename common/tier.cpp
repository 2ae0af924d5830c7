// SPDX-License-Identifier: Apache-2.0
// Tier spellings, sizes, and the checks that a tier's location is usable on this machine.
#include "tier.hpp"

#include "error.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace snap::tier {

const char* kind_name(TierKind k) {
    switch (k) {
        case TierKind::dram: return "dram";
        case TierKind::numa: return "numa";
        case TierKind::dax: return "dax";
        case TierKind::file: return "file";
        case TierKind::pool: return "pool";
    }
    return "?";
}

std::optional<TierKind> kind_from_name(std::string_view n) {
    if (n == "dram") return TierKind::dram;
    if (n == "numa") return TierKind::numa;
    if (n == "dax") return TierKind::dax;
    if (n == "file") return TierKind::file;
    if (n == "pool") return TierKind::pool;
    return std::nullopt;
}

bool byte_addressable(TierKind k) { return k != TierKind::file && k != TierKind::pool; }

std::string TierSpec::name() const {
    switch (kind) {
        case TierKind::dram: return "dram";
        case TierKind::numa: return "numa:" + std::to_string(node);
        case TierKind::dax: return "dax:" + location;
        case TierKind::file: return "file:" + location;
        case TierKind::pool: return location;
    }
    return "?";
}

static int32_t parse_node(std::string_view s, std::string_view whole) {
    if (s.empty() || s.size() > 4 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw UsageError("tier '" + std::string(whole) + "': numa node must be a number", "write numa:N, e.g. numa:0");
    return std::stoi(std::string(s));
}

TierSpec parse_tier(std::string_view text) {
    TierSpec t;
    if (text.substr(0, 8) == "redis://") {
        t.kind = TierKind::pool;
        t.location = std::string(text);
        return t;
    }
    auto colon = text.find(':');
    std::string_view kind = text.substr(0, colon);
    std::string_view rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
    auto k = kind_from_name(kind);
    if (!k)
        throw UsageError("unknown tier '" + std::string(text) + "'",
                         "tiers are dram, dram:DIR, numa:N, numa:N:DIR, dax:PATH, file:DIR, redis://HOST:PORT[/NAMESPACE]");
    t.kind = *k;
    switch (t.kind) {
        case TierKind::dram:
            t.location = std::string(rest);
            break;
        case TierKind::numa: {
            auto c2 = rest.find(':');
            t.node = parse_node(rest.substr(0, c2), text);
            if (c2 != std::string_view::npos) t.location = std::string(rest.substr(c2 + 1));
            break;
        }
        case TierKind::pool:
            throw UsageError("tier '" + std::string(text) + "': a pool is named by its URL", "redis://HOST:PORT[,HOST:PORT...][/NAMESPACE]");
        case TierKind::dax:
        case TierKind::file:
            if (rest.empty())
                throw UsageError("tier '" + std::string(text) + "' needs a path", std::string(kind) + ":PATH, e.g. " +
                                                                                  std::string(kind) + ":/mnt/" +
                                                                                  (t.kind == TierKind::dax ? "pmem" : "ssd"));
            t.location = std::string(rest);
            break;
    }
    while (t.location.size() > 1 && t.location.back() == '/') t.location.pop_back();
    return t;
}

uint64_t parse_size(std::string_view text) {
    std::string s(text);
    if (s == "unlimited" || s == "inf") return kUnlimited;
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || errno || !(v >= 0) || std::isinf(v))
        throw UsageError("invalid size '" + s + "'", "sizes are bytes or with K, M, G, T (binary), e.g. 512M");
    std::string unit(end);
    std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
    double mul = 1;
    if (unit.empty() || unit == "b") mul = 1;
    else if (unit == "k" || unit == "kib" || unit == "kb") mul = 1024.0;
    else if (unit == "m" || unit == "mib" || unit == "mb") mul = 1024.0 * 1024;
    else if (unit == "g" || unit == "gib" || unit == "gb") mul = 1024.0 * 1024 * 1024;
    else if (unit == "t" || unit == "tib" || unit == "tb") mul = 1024.0 * 1024 * 1024 * 1024;
    else throw UsageError("invalid size '" + s + "': unknown unit '" + unit + "'", "use K, M, G or T");
    double bytes = v * mul;
    if (bytes >= 1.8e19) throw UsageError("size '" + s + "' is too large");
    return static_cast<uint64_t>(bytes);
}

std::string format_size(uint64_t b) {
    if (b == kUnlimited) return "unlimited";
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

bool key_matches(std::string_view key, const TierSpec& t) {
    if (key == kind_name(t.kind)) return true;
    if (key == t.name()) return true;
    // A typed location may differ from the resolved one only by trailing slashes.
    std::string k(key);
    while (k.size() > 1 && k.back() == '/') k.pop_back();
    return k == t.name();
}

std::vector<int> online_nodes(const std::string& dir) {
    std::vector<int> nodes;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return nodes;
    while (auto* e = ::readdir(d)) {
        const char* n = e->d_name;
        if (std::strncmp(n, "node", 4) != 0 || !n[4]) continue;
        bool digits = true;
        for (const char* p = n + 4; *p; ++p) digits = digits && *p >= '0' && *p <= '9';
        if (digits) nodes.push_back(std::atoi(n + 4));
    }
    ::closedir(d);
    std::sort(nodes.begin(), nodes.end());
    return nodes;
}

void resolve_location(TierSpec& t, const std::string& staging_dir) {
    if (t.kind == TierKind::pool) return;
    if (t.kind == TierKind::numa) {
        auto nodes = online_nodes();
        if (std::find(nodes.begin(), nodes.end(), t.node) == nodes.end()) {
            std::string have;
            for (int n : nodes) have += (have.empty() ? "" : ", ") + std::to_string(n);
            throw CapabilityError("tier numa:" + std::to_string(t.node) + ": no NUMA node " + std::to_string(t.node) +
                                      " on this machine (/sys/devices/system/node has " +
                                      (have.empty() ? std::string("none") : "node " + have) + ")",
                                  "use numa:0, or dram");
        }
    }
    if (t.location.empty()) t.location = staging_dir;
    struct stat st {};
    if (::stat(t.location.c_str(), &st) < 0)
        throw UsageError("tier " + t.name() + ": " + t.location + ": " + std::strerror(errno),
                         "create the directory first");
    if (S_ISCHR(st.st_mode))
        throw UsageError("tier " + t.name() + ": device DAX (a character device) is not supported yet",
                         "give a directory on an fsdax filesystem (or a tmpfs standing in for one)");
    if (!S_ISDIR(st.st_mode)) throw UsageError("tier " + t.name() + ": " + t.location + " is not a directory");
    if (::access(t.location.c_str(), W_OK) < 0)
        throw UsageError("tier " + t.name() + ": " + t.location + ": " + std::strerror(errno));
    char buf[PATH_MAX];
    if (!::realpath(t.location.c_str(), buf)) throw_errno("realpath " + t.location);
    t.location = buf;
}

}  // namespace snap::tier

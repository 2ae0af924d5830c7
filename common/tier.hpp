// SPDX-License-Identifier: Apache-2.0
// Tiers: places where a class's page data can live (DESIGN.md §2). A tier has a kind, a
// location (a directory its part files go to), a NUMA node where that means something, and
// a capacity budget. Parsing of the command-line spellings lives here so that every tool
// (snap-place now, snap-restore later) reads `dram`, `numa:0`, `dax:/mnt/pmem`, `file:/ssd`
// the same way.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snap::tier {

// pool: a remote pool on a Redis-protocol store (one server or a Redis Cluster) holding
// content-addressed chunks (common/pool/); its location is the pool URL, not a directory.
enum class TierKind : uint32_t { dram = 1, numa = 2, dax = 3, file = 4, pool = 5 };
constexpr int kTierKinds = 5;
const char* kind_name(TierKind k);  // "dram", "numa", "dax", "file", "pool"
std::optional<TierKind> kind_from_name(std::string_view name);
// dram, numa and dax parts can be mapped in place (byte-addressable); file and pool parts are read.
bool byte_addressable(TierKind k);

constexpr uint64_t kUnlimited = UINT64_MAX;

struct TierSpec {
    TierKind kind = TierKind::dram;
    std::string location;  // directory the parts go to ("" = not yet resolved: staging dir); pool: its URL
    int32_t node = -1;     // NUMA node for numa:N, -1 otherwise
    uint64_t budget_bytes = kUnlimited;

    // The name a user types and that reports print: "dram", "numa:0", "dax:/mnt/pmem", "file:/ssd".
    // Staging tiers (dram, numa) print without their directory.
    std::string name() const;
    bool operator==(const TierSpec&) const = default;
};

// "dram", "dram:DIR", "numa:N", "numa:N:DIR", "dax:PATH", "file:DIR",
// "redis://HOST:PORT[,HOST:PORT...][/NAMESPACE]" (a pool; the URL is checked by snap::pool). Throws UsageError.
TierSpec parse_tier(std::string_view text);

// "1G", "512M", "4096", "64k", "1.5GiB", "unlimited". Binary units (K = 1024). Throws UsageError.
uint64_t parse_size(std::string_view text);
std::string format_size(uint64_t bytes);  // "64 MiB", "unlimited"

// Does `key` (from --budget KEY=SIZE or --cost KEY.param) name tier t? A key is a full tier
// name ("dax:/mnt/pmem") or a kind ("dax") when that is unambiguous in the caller's set.
bool key_matches(std::string_view key, const TierSpec& t);

// NUMA nodes that exist on this machine (from /sys/devices/system/node). The root argument
// lets tests point it at a fixture tree.
std::vector<int> online_nodes(const std::string& sysfs_node_dir = "/sys/devices/system/node");

// Resolve a tier's location to an absolute directory (creating nothing): staging tiers
// without a directory get `staging_dir`. Checks the directory exists and is writable and,
// for numa:N, that node N exists. Pool tiers are left alone (their URL is resolved by
// snap::pool). Throws UsageError / CapabilityError.
void resolve_location(TierSpec& t, const std::string& staging_dir);

}  // namespace snap::tier

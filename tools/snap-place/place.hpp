// SPDX-License-Identifier: Apache-2.0
// snap-place: put each class of a split (RW, RO, COLD) on a tier — chosen by the user or by
// the cost model under budgets — and write the placed artifact (DESIGN.md §2, §3).
#pragma once
#include "common/cli.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace snap::place_tool {

struct Options {
    cli::CommonOptions common;
    std::string split;
    std::vector<std::string> tier;     // CLASS=SPEC
    std::vector<std::string> tiers;    // SPEC[,SPEC…]
    std::vector<std::string> budget;   // TIER=SIZE
    std::vector<std::string> cost;     // GROUP.PARAM=VALUE
    std::string cost_file;
    std::string staging;
    bool compress = false;
    bool no_layout = false;
    int zstd_level = 1;
    std::string frame_size;  // "" = 64K, or the page size if larger
    bool dry_run = false;
    // Pool tiers (redis://…): the chunk size, a name to register the manifest under, replicas to wait for.
    std::string chunk_size;  // "" = 16K, or the page size if larger
    std::string name;
    int pool_replicas = 0;
    // Pool management (no split): --pool URL with one of --list, --remove, --collect, --fetch, --calibrate.
    std::string pool;
    bool list = false, collect = false, calibrate = false;
    std::string remove, fetch;
};

int run(const Options& opt);
int run_pool(const Options& opt);  // pool.cpp

}  // namespace snap::place_tool

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
    std::string frame_size = "64K";
    bool dry_run = false;
};

int run(const Options& opt);

}  // namespace snap::place_tool

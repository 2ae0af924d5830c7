// SPDX-License-Identifier: Apache-2.0
// snap-stat: numbers and pictures of any artifact, and comparisons between two.
#pragma once
#include "common/cli.hpp"
#include "common/loadset.hpp"
#include "common/split.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace snap::stat_tool {

struct Options {
    cli::CommonOptions common;
    std::vector<std::string> artifacts;  // one or two
    bool verify = false;
    std::string mem;     // with --verify on a split: check it reproduces this image byte for byte
    bool list = false;   // one line per page (loading set) or per run (split)
    bool map = false;    // a character picture of the image
    bool pool = false;   // placed: ask the pool about its pool parts (present, shared)
    unsigned width = 64;
    unsigned rows = 16;
};

int run(const Options& opt);

// Pure pieces, unit-tested.
nlohmann::json describe_loadset(const LoadingSet& ls);
nlohmann::json describe_split(const SplitPlan& plan);
nlohmann::json compare_loadsets(const LoadingSet& a, const LoadingSet& b);
nlohmann::json compare_splits(const SplitPlan& a, const SplitPlan& b);
// One character per cell of `pages_per_cell` pages; the hottest class in the cell wins.
std::vector<std::string> map_split(const SplitPlan& plan, unsigned width, unsigned rows);
std::vector<std::string> map_loadset(const LoadingSet& ls, unsigned width, unsigned rows);

}  // namespace snap::stat_tool

// SPDX-License-Identifier: Apache-2.0
// snap-split: classify every page of an image ZERO / RO / RW / COLD from one or more loading
// sets and write the split artifact (DESIGN.md §2, §3).
#pragma once
#include "common/cli.hpp"

#include <string>
#include <vector>

namespace snap::split_tool {

struct Options {
    cli::CommonOptions common;
    std::string mem;
    std::vector<std::string> loadsets;
    std::string merge = "union";
    bool assume_written = false;
    uint32_t page_size = 4096;
    unsigned threads = 0;  // 0 = one per core
    bool rehash = false;   // hash the image even if its fingerprint is remembered
};

int run(const Options& opt);

}  // namespace snap::split_tool

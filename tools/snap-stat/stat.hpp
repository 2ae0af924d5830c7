// SPDX-License-Identifier: Apache-2.0
// snap-stat: numbers and pictures of any artifact (one description per file given, like
// `zstd -l *`), and comparisons between two of a kind (--compare A B).
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
    std::vector<std::string> artifacts;  // each described in turn; with compare, exactly two
    bool compare = false;                // compare the two artifacts instead of describing each
    std::string svg;                     // draw the page map (or the comparison) as SVG here; "-" = stdout
    bool verify = false;
    std::string mem;     // with --verify on a split: check it reproduces this image byte for byte
    bool list = false;   // one line per page (loading set) or per run (split)
    bool map = false;    // a character picture of the image
    bool pool = false;   // placed: ask the pool about its pool parts (present, shared)
    std::string pool_url;  // placed, with --verify or --pool: the pool's seeds as this host reaches it
    unsigned width = 0;  // cells per row; 0: 64 for --map, 128 for --svg (fewer for a small image)
    unsigned rows = 0;   // rows at most; 0: 16 for --map, 64 for --svg
};

constexpr unsigned kMapWidth = 64, kMapRows = 16;  // --map's defaults
constexpr unsigned kSvgMaxCells = 512;              // --svg: at most this many cells a row, and rows

int run(const Options& opt);

// Pure pieces, unit-tested.
nlohmann::json describe_loadset(const LoadingSet& ls);
nlohmann::json describe_split(const SplitPlan& plan);
nlohmann::json compare_loadsets(const LoadingSet& a, const LoadingSet& b);
nlohmann::json compare_splits(const SplitPlan& a, const SplitPlan& b);
// One character per cell of `pages_per_cell` pages; the hottest class in the cell wins.
std::vector<std::string> map_split(const SplitPlan& plan, unsigned width, unsigned rows);
std::vector<std::string> map_loadset(const LoadingSet& ls, unsigned width, unsigned rows);
// The same cells as JSON: {"kind": "<kind>-map", width, rows, pages_per_cell, image_pages,
// page_size, "cells": [class name per cell, address order]}.
nlohmann::json map_split_json(const SplitPlan& plan, unsigned width, unsigned rows, const std::string& kind);
nlohmann::json map_loadset_json(const LoadingSet& ls, unsigned width, unsigned rows);
// --list as JSON: a loading set's touches {page, access, rank, time_ns} in first-touch order;
// a split's (or placed artifact's) class runs {start_page, pages, class} in address order.
nlohmann::json list_loadset_json(const LoadingSet& ls);
nlohmann::json list_split_json(const SplitPlan& plan, const std::string& kind);

// --svg: the page map of one artifact, and of a comparison (names as they are to be shown).
std::string svg_split(const SplitPlan& plan, const std::string& name, const std::string& kind, unsigned width, unsigned rows);
std::string svg_loadset(const LoadingSet& ls, const std::string& name, unsigned width, unsigned rows);
std::string svg_compare_loadsets(const LoadingSet& a, const LoadingSet& b, const std::string& name_a,
                                 const std::string& name_b, unsigned width, unsigned rows);
std::string svg_compare_splits(const SplitPlan& a, const SplitPlan& b, const std::string& name_a, const std::string& name_b,
                               unsigned width, unsigned rows);

}  // namespace snap::stat_tool

// SPDX-License-Identifier: Apache-2.0
// snap-stat: command line. The work is in stat.cpp.
#include "stat.hpp"

int main(int argc, char** argv) {
    snap::stat_tool::Options opt;
    CLI::App app{"Describe snapkit artifacts (loading sets, splits, placed manifests), each file in turn, or compare two\n"
                 "of a kind with --compare. Text by default; --json prints one JSON object per file (JSON Lines).",
                 "snap-stat"};
    snap::cli::add_common(app, opt.common, "Write the report here instead of stdout (atomically: temp file, fsync, rename)");
    app.add_flag("--compare", opt.compare,
                 "Compare the two artifacts given (two loading sets: Jaccard, overlap; two splits: class of every page)");
    app.add_flag("--verify", opt.verify, "Check every checksum, page data included");
    app.add_option("--mem", opt.mem, "With a split: check that it reproduces this image, page for page")->type_name("IMAGE");
    app.add_flag("--list", opt.list,
                 "List the contents: loading set 'PAGE ACCESS RANK TIME_NS' per touched page; split or placed 'START PAGES CLASS' per run");
    app.add_flag("--map", opt.map,
                 "Draw the image, one character per cell of pages: split . zero - cold r ro W rw; loading set . r W");
    app.add_option("--svg", opt.svg,
                   "Draw the page map as SVG into this file (- for stdout): classes coloured, legend, offset scale, loading "
                   "order; with --compare, the two against each other")
        ->type_name("FILE|-");
    app.add_flag("--pool", opt.pool,
                 "With a placed artifact: ask its pool which of its chunks are there and which other manifests share");
    app.add_option("--pool-url", opt.pool_url,
                   "With a placed artifact and --verify or --pool: reach its pool at these seeds (same namespace) instead of "
                   "the ones it was placed with")
        ->type_name("URL");
    app.add_option("--width", opt.width, "Cells a row (default 64 for --map; 128 for --svg, fewer for a small image)")
        ->check(CLI::Range(1u, 1000u));
    app.add_option("--rows", opt.rows, "Rows at most (default 16 for --map, 64 for --svg)")->check(CLI::Range(1u, 10000u));
    app.add_option("artifacts", opt.artifacts, "Artifacts to describe, each in turn (- for stdin); two with --compare")
        ->required()->type_name("ARTIFACT");
    return snap::cli::run_tool("snap-stat", app, argc, argv, opt.common, [&] { return snap::stat_tool::run(opt); });
}

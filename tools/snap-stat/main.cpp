// SPDX-License-Identifier: Apache-2.0
// snap-stat: command line. The work is in stat.cpp.
#include "stat.hpp"

int main(int argc, char** argv) {
    snap::stat_tool::Options opt;
    CLI::App app{"Describe a snapkit artifact (loading set, split), or compare two of a kind.\n"
                 "Text by default; --json prints one JSON object.",
                 "snap-stat"};
    snap::cli::add_common(app, opt.common, "Write the report here instead of stdout (atomically: temp file, fsync, rename)");
    app.add_flag("--verify", opt.verify, "Check every checksum, page data included");
    app.add_option("--mem", opt.mem, "With a split: check that it reproduces this image, page for page")->type_name("IMAGE");
    app.add_flag("--list", opt.list,
                 "List the contents: loading set 'PAGE ACCESS RANK TIME_NS' per touched page; split 'START PAGES CLASS' per run");
    app.add_flag("--map", opt.map,
                 "Draw the image, one character per cell of pages: split . zero - cold r ro W rw; loading set . r W");
    app.add_flag("--pool", opt.pool,
                 "With a placed artifact: ask its pool which of its chunks are there and which other manifests share");
    app.add_option("--width", opt.width, "Map width in characters")->capture_default_str()->check(CLI::Range(1u, 1000u));
    app.add_option("--rows", opt.rows, "Map height in rows")->capture_default_str()->check(CLI::Range(1u, 10000u));
    app.add_option("artifacts", opt.artifacts, "One artifact, or two of a kind to compare (- for stdin)")
        ->required()->type_name("ARTIFACT");
    return snap::cli::run_tool("snap-stat", app, argc, argv, opt.common, [&] { return snap::stat_tool::run(opt); });
}

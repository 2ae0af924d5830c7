// SPDX-License-Identifier: Apache-2.0
// snap-split: command line. The work is in split.cpp.
#include "split.hpp"

int main(int argc, char** argv) {
    snap::split_tool::Options opt;
    CLI::App app{"Classify every page of a memory image as ZERO, RO, RW or COLD from loading sets,\n"
                 "and write the split artifact: class runs, load order, and the page data packed by class.",
                 "snap-split"};
    snap::cli::add_common(app, opt.common, "Write the split here (- for stdout)");
    snap::cli::add_report(app, opt.common);
    app.add_option("--mem", opt.mem, "The memory image the loading sets were recorded against")->required()->type_name("IMAGE");
    app.add_option("--merge", opt.merge, "How several loading sets combine: union, intersect, atleast:K")
        ->type_name("MODE")->capture_default_str();
    app.add_flag("--assume-written", opt.assume_written,
                 "For loading sets without read/write information (mincore): class touched pages RW, not RO");
    app.add_option("--page-size", opt.page_size, "Page size in bytes (4096, or 2097152 for hugepage snapshots)")
        ->capture_default_str();
    app.add_option("--threads", opt.threads, "Threads for the scan and the checksums (0 = one per core)")
        ->capture_default_str()->type_name("N")->check(CLI::Range(0u, 1024u));
    app.add_flag("--rehash", opt.rehash,
                 "Hash the image for its fingerprint even if it is remembered for the image's unchanged stat");
    app.add_option("loadsets", opt.loadsets, "Loading sets (- for stdin)")->required()->type_name("LOADSET");
    return snap::cli::run_tool("snap-split", app, argc, argv, opt.common, [&] { return snap::split_tool::run(opt); });
}

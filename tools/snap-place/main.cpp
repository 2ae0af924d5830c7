// SPDX-License-Identifier: Apache-2.0
// snap-place: command line. The work is in place.cpp.
#include "place.hpp"

int main(int argc, char** argv) {
    snap::place_tool::Options opt;
    CLI::App app{"Put the page data of a split on tiers (dram, numa:N, dax:PATH, file:DIR, redis://HOST:PORT/NS) and write the placed\n"
                 "artifact: the plan, where every part went, and the cost model's restore estimate.\n"
                 "Classes without --tier are placed by the cost model among --tiers, under --budget.",
                 "snap-place"};
    snap::cli::add_common(app, opt.common, "Write the placed artifact (the manifest) here (- for stdout)");
    snap::cli::add_report(app, opt.common);
    app.add_option("--tier", opt.tier, "Place a class on a tier: rw=dram, ro=dax:/mnt/cxl, cold=file:/ssd (repeatable)")
        ->type_name("CLASS=TIER")->allow_extra_args(false);
    app.add_option("--tiers", opt.tiers,
                   "Tiers the cost model may use, comma-separated (default: dram and file:<the output's directory>)")
        ->type_name("TIER[,TIER...]")->allow_extra_args(false);
    app.add_option("--budget", opt.budget, "Capacity of a tier (by kind or full name): dram=64M, dax=1G (repeatable)")
        ->type_name("TIER=SIZE")->allow_extra_args(false);
    app.add_option("--cost", opt.cost, "Override a cost-model parameter: dax.read_gbps=10, restore.install_us=2.1 (repeatable)")
        ->type_name("GROUP.PARAM=VALUE")->allow_extra_args(false);
    app.add_option("--cost-file", opt.cost_file, "Cost-model parameters from a JSON file {\"GROUP\": {\"PARAM\": VALUE}}")
        ->type_name("JSON");
    app.add_option("--staging", opt.staging, "Directory for dram and numa parts (default: the output's directory)")
        ->type_name("DIR");
    app.add_flag("--compress", opt.compress, "Compress parts on file: tiers with zstd in independent frames (seekable)");
    app.add_option("--zstd-level", opt.zstd_level, "zstd level for --compress")->capture_default_str()->check(CLI::Range(-7, 19))->type_name("N");
    app.add_option("--frame-size", opt.frame_size,
                   "Uncompressed bytes per zstd frame, a multiple of the page size (default 64K, or the page size if larger)")
        ->type_name("SIZE");
    app.add_flag("--no-layout", opt.no_layout,
                 "Do not write the image-order layout file beside an RO part on a byte-addressable tier");
    app.add_flag("--dry-run", opt.dry_run, "Choose tiers and print the estimate; write nothing");
    app.add_option("--chunk-size", opt.chunk_size,
                   "Pool tiers: raw bytes per content-addressed chunk, a multiple of the page size (default 16K, or the page size if larger)")
        ->type_name("SIZE");
    app.add_option("--name", opt.name, "Pool tiers: also register the manifest under this name (replacing what it named)")
        ->type_name("NAME");
    app.add_option("--pool-replicas", opt.pool_replicas, "Pool tiers: wait until this many replicas hold the new chunks")
        ->type_name("N")->capture_default_str();
    auto* pool = app.add_option("--pool", opt.pool, "Manage a pool instead of placing: with --list, --remove, --collect, --fetch or --calibrate")
        ->type_name("URL");
    app.add_flag("--list", opt.list, "--pool: list the registered manifests (digest, names, chunks)")->needs(pool);
    app.add_option("--remove", opt.remove, "--pool: unregister a manifest (by digest or name); its chunks go at the next --collect")
        ->type_name("DIGEST|NAME")->needs(pool);
    app.add_flag("--collect", opt.collect, "--pool: delete every chunk that no registered manifest or running placement names")->needs(pool);
    app.add_option("--fetch", opt.fetch, "--pool: write a registered manifest (by digest or name) to -o FILE")
        ->type_name("DIGEST|NAME")->needs(pool);
    app.add_flag("--calibrate", opt.calibrate,
                 "--pool: measure the pool's fetch latency and bandwidth and print them as a --cost-file")->needs(pool);
    app.add_option("split", opt.split, "The split artifact")->type_name("SPLIT");
    return snap::cli::run_tool("snap-place", app, argc, argv, opt.common, [&] { return opt.pool.empty() ? snap::place_tool::run(opt) : snap::place_tool::run_pool(opt); });
}

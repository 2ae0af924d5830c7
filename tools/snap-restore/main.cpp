// SPDX-License-Identifier: Apache-2.0
// snap-restore: command line. The work is in restore.cpp, exec.cpp and serve.cpp.
#include "restore.hpp"

int main(int argc, char** argv) {
    snap::restore_tool::Options opt;
    CLI::App app{"Restore a placed snapshot with a strategy (vanilla, reap, faasnap, tiered) through a front-end:\n"
                 "--exec runs a VMM (QEMU …) with the restore preload, --serve answers Firecracker's UFFD backend,\n"
                 "--materialize writes a plain image.",
                 "snap-restore"};
    snap::cli::add_common(app, opt.common, "Write the JSON/text report here instead of stdout");
    app.add_option("placed", opt.placed, "The placed artifact (snap-place output)")->required()->type_name("PLACED");
    app.add_option("--strategy", opt.strategy, "vanilla, reap, faasnap or tiered")->type_name("S")->capture_default_str();
    app.add_flag("--exec", opt.exec, "Run the VMM given after -- with libsnaprestore.so preloaded");
    app.add_option("--serve", opt.serve, "Serve guest memory on this unix socket (Firecracker's UFFD backend)")->type_name("SOCKET");
    app.add_option("--materialize", opt.materialize, "Rebuild a plain image from the parts and warm its loading set")
        ->type_name("PATH");
    app.add_option("--record", opt.record, "With --serve, or --exec (--strategy vanilla): record every first touch into this loading set (uffd)")->type_name("LOADSET");
    app.add_option("--image", opt.image, "The image file the VMM maps (--exec; it must match the placed artifact)")
        ->type_name("PATH");
    app.add_option("--gap-pages", opt.gap_pages, "Merge runs across image gaps smaller than this (pages)")->capture_default_str();
    app.add_option("--max-mappings", opt.max_mappings, "Mapping budget for --exec (default: vm.max_map_count minus 4096)")
        ->type_name("N");
    app.add_flag("--drain-cold", opt.drain_cold, "tiered: pull COLD pages in at idle priority after the hot phase");
    app.add_flag("--layered", opt.layered,
                 "tiered: lay one mapping per run (the older schedule) instead of one mapping of the RO layout file "
                 "with userfaultfd");
    app.add_option("--huge-regions", opt.huge_regions,
                   "tiered (userfaultfd schedule): fill a 2 MiB region holding at least this many RW pages and no COLD "
                   "page as one transparent huge page instead of installing its RW pages one by one (0 = never)")
        ->type_name("PAGES")->capture_default_str();
    app.add_flag("--overlap", opt.overlap,
                 "--exec, reap and tiered: let the VMM's mmap() of guest memory return once it is registered with "
                 "userfaultfd, and install the eager pages while the VMM sets itself up (a touch of a page not "
                 "installed yet waits for it)");
    app.add_option("--granule", opt.granule, "bytes resolved around each demand fault (default 16K when COLD is on a file tier or in a pool, else 64K; never below the page size); a sequential scan doubles it per fault up to 256K")
        ->type_name("SIZE");
    app.add_option("--fault-spin", opt.fault_spin_us,
                   "--serve, --exec (userfaultfd schedules): after serving faults, poll for the next one this long "
                   "before sleeping (default 100 when a part is on a file tier or in a pool, else 0)")
        ->type_name("US")->check(CLI::Range(0, 100000));
    app.add_flag("--no-idle-poll", opt.no_idle_poll,
                 "while the fault server polls (--fault-spin), do not hold a CPU latency request of 0 us "
                 "(/dev/cpu_dma_latency), which makes idle cores poll instead of halting so that what a fault "
                 "wakes runs at once");
    app.add_option("--accept-timeout", opt.accept_timeout_s, "--serve: seconds to wait for the VMM to connect (0 = forever)")
        ->type_name("SECONDS")->capture_default_str();
    app.add_option("--allow-uid", opt.allow_uids,
                   "--serve: also serve a VMM running as this user (name or uid; repeatable): the socket is then 0666 "
                   "and every peer's uid is checked")
        ->type_name("USER")->allow_extra_args(false)->take_all();
    app.add_option("--pool-cache", opt.pool_cache, "Pool parts: memory for fetched chunks (the oldest are dropped first)")
        ->type_name("SIZE")->capture_default_str();
    app.add_option("--pool-prefetch", opt.pool_prefetch, "Pool parts: chunks fetched ahead (in part order) after a miss that continues the previous read (a scan), 0 = none")
        ->type_name("N")->capture_default_str();
    app.add_option("--pool", opt.pool,
                   "Pool parts: read them from this URL's seed nodes instead of the ones the placed artifact names "
                   "(the same pool reached at other addresses; the namespace must be the artifact's)")
        ->type_name("URL");
    app.add_option("--preload", opt.preload, "The preload library (default: $SNAPRESTORE_PRELOAD, else libsnaprestore.so in ../lib/snapkit (installed) or ../lib (build tree) beside snap-restore)")
        ->type_name("PATH");
    app.add_flag("--verify", opt.verify,
                 "Hash every part and the image now, even those remembered as unchanged since they were last checked");
    app.add_flag("--no-verify", opt.no_verify,
                 "Serve parts and image without checking their digests (by default they are checked, or remembered)");
    app.add_flag("--strict", opt.strict,
                 "Refuse a schedule that falls back: pages taken from the image instead of their part, or tiered's "
                 "layered mappings instead of its userfaultfd schedule");
    app.add_flag("--no-warm", opt.no_warm, "--materialize: do not read the loading set into the page cache");
    app.add_flag("--dry-run", opt.dry_run, "Build the mapping plan, report it, restore nothing");
    app.add_option("command", opt.command, "With --exec: the VMM and its arguments, after --")->type_name("VMM ARGS");
    return snap::cli::run_tool("snap-restore", app, argc, argv, opt.common, [&] { return snap::restore_tool::run(opt); });
}

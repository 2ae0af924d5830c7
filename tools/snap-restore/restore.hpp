// SPDX-License-Identifier: Apache-2.0
// snap-restore: restore a placed artifact with one of four strategies (vanilla, reap,
// faasnap, tiered — DESIGN.md §4) through one of three front-ends: --exec (a VMM started
// with libsnaprestore.so preloaded), --serve (Firecracker's UFFD backend protocol) or
// --materialize (a plain image file, loading set warmed into the page cache).
#pragma once
#include "common/cli.hpp"
#include "common/placed.hpp"
#include "common/restore/plan.hpp"
#include "common/uffd/server.hpp"

#include <nlohmann/json.hpp>

#include <memory>

#include <string>
#include <vector>

namespace snap::restore_tool {

struct Options {
    cli::CommonOptions common;
    std::string placed;
    std::string strategy = "vanilla";
    bool exec = false;
    std::vector<std::string> command;  // the VMM and its arguments (after --)
    std::string serve;                 // socket path
    std::string materialize;           // output image path
    std::string record;                // loading set output (--serve)
    std::string image;                 // the image the VMM maps (--exec)
    std::string preload;               // libsnaprestore.so (default: ../lib/snapkit or ../lib beside the binary)
    uint64_t gap_pages = 32;
    uint64_t max_mappings = 0;         // 0 = vm.max_map_count minus headroom
    bool drain_cold = false;
    bool layered = false;              // tiered: layered mappings instead of the userfaultfd schedule
    uint64_t huge_regions = 0;         // tiered: fill a 2 MiB region with at least this many RW pages as one huge page (0 = never)
    bool overlap = false;              // --exec, userfaultfd schedules: mmap() returns before the eager installs are done
    bool verify = false;               // re-hash every part and the image now, whatever is remembered
    bool no_verify = false;            // check nothing (the named escape)
    bool dry_run = false;
    bool no_warm = false;
    bool strict = false;               // a schedule that falls back (pages from the image, layered tiered) is an error
    std::string granule;  // "" = granule_bytes() below
    int fault_spin_us = -1;            // -1 = serve_spin_us()'s default
    bool no_idle_poll = false;         // the fault server polls without asking idle cores to poll too
    std::string pool_cache = "256M";   // pool parts: decoded chunks kept in memory
    uint32_t pool_prefetch = 16;       // pool parts: chunks read ahead after a miss that continues a scan
    std::string pool;                  // pool parts: read from this URL's seeds ("" = the manifest's)
    double accept_timeout_s = 60;
    std::vector<std::string> allow_uids;  // --serve: peers of these users (names or uids) are served too
};

int run(const Options& opt);

// What every front-end starts from: the placed artifact, read and checked.
class Context {
public:
    explicit Context(const Options& opt);
    const placed::PlacedReader& placed() const { return *placed_; }
    restore::Strategy strategy() const { return strategy_; }
    // What the default check did (parts and layout files hashed or remembered), for the report.
    const placed::CheckStats& checked() const { return checked_; }
    uint64_t check_ns() const { return check_ns_; }
    nlohmann::json check_json() const;  // {"parts", "files_hashed", "files_remembered", "bytes_hashed", "ns"}
    // Bytes resolved around each demand fault (--granule, else the default): 64 KiB when the
    // COLD pages are in memory (a round trip then costs more than the extra copies), 16 KiB
    // when they are on a file tier or in the pool (a cold 64 KiB read costs ~2x a 4 KiB one
    // on a virtio disk, and most mispredicted touches use one page of it), never below a page;
    // --granule as given.
    uint64_t granule_bytes(const Options& opt) const;
    // How long the fault server polls for the next fault before it sleeps
    // (uffd::ServerOptions::spin_us): --fault-spin, else 100 µs when a part is on a tier that
    // is not byte-addressable (a file tier or the pool: each fault then waits on a device or a
    // network round trip, and every hop of its chain would otherwise wait for an idle core to
    // wake), else 0.
    int serve_spin_us(const Options& opt) const;
    // The above, and whether idle cores poll while the server does (--no-idle-poll), into a
    // fault server's options.
    void set_polling(const Options& opt, uffd::ServerOptions& so) const;
    // How pool parts are read (--pool-cache, --pool-prefetch, --pool).
    pool::ReadOptions pool_options() const { return pool_options_; }
    // The plan for --exec (and --dry-run), under the mapping budget.
    restore::MappingPlan build_plan(const Options& opt, const std::string& image_path) const;
    // The report goes to stdout or -o FILE; JSON with --json, else the text lines.
    void emit(const Options& opt, const nlohmann::json& j, const std::vector<std::string>& lines) const;

private:
    std::unique_ptr<placed::PlacedReader> placed_;
    restore::Strategy strategy_;
    placed::CheckStats checked_;
    uint64_t check_ns_ = 0;
    bool no_verify_ = false;
    pool::ReadOptions pool_options_;
    std::string pool_url_, placed_pool_url_;  // the pool URL read from, and the one the manifest names
};

// Front-ends (exec.cpp, serve.cpp, restore.cpp).
// The page size of the hugetlbfs mount holding path (an absent file: its directory, where its
// placeholder would be made), 0 when it is not on hugetlbfs.
uint64_t hugetlbfs_page_bytes(const std::string& path);

int run_exec(const Options& opt, Context& ctx);
int run_serve(const Options& opt, Context& ctx);
int run_materialize(const Options& opt, Context& ctx);
int run_dry(const Options& opt, Context& ctx);

}  // namespace snap::restore_tool

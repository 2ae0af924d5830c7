// SPDX-License-Identifier: Apache-2.0
// snap-record: command line → Options → run() (record.cpp).
#include "method.hpp"
#include "record.hpp"

#include <limits>

int main(int argc, char** argv) {
    using namespace snap::record;
    Options opt;
    CLI::App app{"Record which pages of a memory image a process touches (a loading set).", "snap-record"};
    snap::cli::add_common(app, opt.common, "Write the loading set here (- = stdout; then --json needs --report)");
    snap::cli::add_report(app, opt.common);
    std::string methods;
    for (auto& n : method_names()) methods += (methods.empty() ? "" : ", ") + n;
    app.add_option("--mem", opt.mem, "The memory image the target maps (matched by device and inode)")
        ->required()
        ->type_name("IMAGE");
    app.add_option("-m,--method", opt.method, "Recording method: " + methods)->capture_default_str()->type_name("NAME");
    app.add_option("--pid", opt.pid, "Attach to this running process instead of starting CMD")
        ->type_name("PID")
        ->check(CLI::Range(1, std::numeric_limits<int>::max()));
    app.add_option("--interval", opt.interval_ms, "Scan every MS milliseconds (0 = only on RSS growth and at exit)")
        ->capture_default_str()
        ->type_name("MS");
    app.add_option("--rss-trigger", opt.rss_trigger_pages,
                   "Also scan when the target's RSS grew by PAGES since the last scan (0 = off)")
        ->capture_default_str()
        ->type_name("PAGES")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--duration", opt.duration_s, "Stop recording after SECONDS (0 = until the target exits)")
        ->type_name("SECONDS");
    app.add_flag("--keep-on-failure", opt.keep_on_failure,
                 "Write the loading set even if the command failed, was killed or was interrupted (exit 0, a warning)");
    app.add_flag("--keep-cache", opt.keep_cache, "mincore: do not drop the image from the page cache first");
    app.add_flag("--rehash", opt.rehash,
                 "Hash the image for its fingerprint even if it is remembered for the image's unchanged stat");
    app.add_option("--page-size", opt.page_size, "Page size of the image")->capture_default_str()->type_name("BYTES");
    app.add_option("--bpf-source", opt.bpf_source, "bpf: event source (auto, kvm, user)")->capture_default_str();
    app.add_option("--gpa-map", opt.gpa_map, "bpf, kvm source: guest-physical to image offset layout")->type_name("GPA:OFFSET:SIZE,...");
    app.add_option("command", opt.command, "The command to start and record (after --)")->type_name("CMD ARGS…");
    app.footer(
        "Stops when the target exits (final scan at its exit stop), on SIGINT/SIGTERM, or after --duration.\n"
        "A started command still running then gets SIGTERM; an attached --pid is detached.\n"
        "Exit status: 0 recorded, 1 failure (also: CMD failed, was killed or interrupted; no loading set is\n"
        "written unless --keep-on-failure), 2 usage, 3 bad image,\n"
        "4 missing capability (ptrace or /proc/PID/pagemap access). See snap-record(1).");
    return snap::cli::run_tool("snap-record", app, argc, argv, opt.common, [&] { return run(opt); });
}

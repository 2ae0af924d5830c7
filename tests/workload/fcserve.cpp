// SPDX-License-Identifier: Apache-2.0
// fcserve: a test page-fault handler for Firecracker's UFFD backend, serving a plain image
// file through snap::uffd::serve_firecracker — what `snap-restore --serve` does with a
// placed artifact, minus the artifact. Used by tests/cli/serve_*.sh and for measurements.
//
//   fcserve --socket S --image IMG [--granule-kib 64] [--readahead-kib 0] [--no-zeropage] [--eager-all]
//           [--record OUT.ls] [--die-after-faults N] [--split SPLIT] [--json]
// With --split, pages come from a split artifact of the image (SplitSource) instead.
#include "common/cli.hpp"
#include "common/image.hpp"
#include "common/loadset.hpp"
#include "common/split.hpp"
#include "common/uffd/firecracker.hpp"
#include "common/uffd/source.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

int main(int argc, char** argv) {
    snap::cli::CommonOptions common;
    CLI::App app{"Serve a memory image to a Firecracker-style UFFD client", "fcserve"};
    snap::cli::add_common(app, common);
    std::string socket_path, image_path, record_path, split_path;
    uint64_t granule_kib = 64, readahead_kib = 0, die_after = 0;
    bool no_zeropage = false, eager_all = false, no_zero_detect = false;
    int accept_timeout_ms = 30000;
    app.add_option("--socket", socket_path, "Listen here")->required();
    app.add_option("--image", image_path, "The memory image")->required();
    app.add_option("--granule-kib", granule_kib, "Resolve this much around each fault")->capture_default_str();
    app.add_option("--readahead-kib", readahead_kib, "Sequential faults resolve up to this much (0: a fixed granule)")->capture_default_str();
    app.add_flag("--no-zeropage", no_zeropage, "Copy zero pages instead of UFFDIO_ZEROPAGE");
    app.add_flag("--no-zero-detect", no_zero_detect, "Treat every page as data");
    app.add_flag("--eager-all", eager_all, "Install the whole image before serving faults (REAP-style eager path)");
    app.add_option("--split", split_path, "Serve from this split of the image (snap-split output)");
    app.add_option("--record", record_path, "Record first touches into this loading set");
    app.add_option("--die-after-faults", die_after, "Fail after N faults (tests the peer kill)");
    app.add_option("--accept-timeout-ms", accept_timeout_ms, "Give up if nobody connects")->capture_default_str();
    return snap::cli::run_tool("fcserve", app, argc, argv, common, [&] {
        snap::uffd::ImageFileSource image_source(image_path, 4096, !no_zero_detect);
        std::unique_ptr<snap::SplitReader> split;
        std::unique_ptr<snap::uffd::SplitSource> split_source;
        if (!split_path.empty()) {
            split = std::make_unique<snap::SplitReader>(split_path);
            split_source = std::make_unique<snap::uffd::SplitSource>(*split);
        }
        snap::uffd::PageSource& source = split_source ? static_cast<snap::uffd::PageSource&>(*split_source) : image_source;
        snap::uffd::ServeOptions opt;
        opt.server.granule_bytes = granule_kib * 1024;
        opt.server.max_granule_bytes = readahead_kib * 1024;
        opt.server.use_zeropage = !no_zeropage;
        opt.server.record = !record_path.empty();
        opt.accept_timeout_ms = accept_timeout_ms;
        if (eager_all) opt.eager.push_back({0, source.size_bytes() / 4096});
        opt.on_connected = [&](const snap::uffd::FirecrackerPeer& peer, snap::uffd::FaultServer& server) {
            snap::cli::info("peer pid " + std::to_string(peer.pid) + ", " + std::to_string(peer.regions.size()) + " regions");
            if (die_after)
                server.on_batch = [die_after](const snap::uffd::ServerStats& s) {
                    if (s.faults >= die_after) throw snap::Error("dying on purpose after " + std::to_string(s.faults) + " faults");
                };
        };
        auto result = snap::uffd::serve_firecracker(socket_path, source, opt);
        if (!record_path.empty()) {
            result.recording.image = snap::identify_image_file(image_path);
            snap::write_loadset(result.recording, record_path);
        }
        nlohmann::json j = result.to_json();
        if (common.json) snap::cli::print_json(j);
        else snap::cli::note("served " + std::to_string(result.stats.faults) + " faults, " +
                             std::to_string(result.stats.pages_copied) + " pages copied, " +
                             std::to_string(result.stats.pages_zeroed) + " zeroed");
        return 0;
    });
}

// SPDX-License-Identifier: Apache-2.0
// snap-record: record the loading set of a restore (which pages of an image a process
// touches, in order, read or written). main.cpp parses argv into Options; run() does the work.
#pragma once
#include "common/cli.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace snap::record {

struct Options {
    cli::CommonOptions common;
    std::string method = "pagemap";  // mincore | pagemap | bpf (see method_names())
    std::string mem;                 // the image file
    uint32_t page_size = 4096;
    pid_t pid = 0;                   // --pid: attach to a running process
    std::vector<std::string> command;  // -- CMD ARGS…: start and record it
    double duration_s = 0;           // stop after this long (0 = until exit / signal)
    double interval_ms = 50;         // scan interval (scanning methods)
    uint64_t rss_trigger_pages = 1024;  // also scan when the target's RSS grew by this much (0 = off)
    bool keep_on_failure = false;    // write the loading set even if the command failed or was interrupted
    bool keep_cache = false;         // mincore: do not drop the image from the page cache first
    bool rehash = false;             // hash the image even if its fingerprint is remembered
    // bpf method
    std::string bpf_source = "auto";  // auto | kvm | user
    std::string gpa_map;              // guest-physical → image offset layout (bpf, kvm source)
};

int run(const Options& opt);

}  // namespace snap::record

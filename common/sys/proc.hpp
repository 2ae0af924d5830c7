// SPDX-License-Identifier: Apache-2.0
// /proc readers for a target process: its memory map (/proc/PID/maps), its resident set
// (/proc/PID/statm) and a few /proc/PID/status fields. Parsing is pure (testable on text);
// the readers only fetch the text.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snap::sys {

// One line of /proc/PID/maps.
struct MapsEntry {
    uint64_t start = 0, end = 0;  // [start, end) virtual addresses
    bool read = false, write = false, exec = false, shared = false;
    uint64_t offset = 0;          // file offset of start
    unsigned dev_major = 0, dev_minor = 0;
    uint64_t inode = 0;
    std::string path;             // may contain spaces; " (deleted)" stripped into `deleted`
    bool deleted = false;
};

// Parse one maps line ("start-end perms offset maj:min inode   path"). nullopt if malformed.
std::optional<MapsEntry> parse_maps_line(std::string_view line);
// Parse a whole maps text; malformed lines are skipped.
std::vector<MapsEntry> parse_maps(std::string_view text);

// A mapping of the image file inside a process: virtual [start, end) shows the image from
// byte file_offset on.
struct ImageRegion {
    uint64_t start = 0, end = 0;
    uint64_t file_offset = 0;
    bool shared = false, writable = false;
    bool operator==(const ImageRegion&) const = default;
};

// The mappings of the file (device, inode) among entries, in address order.
std::vector<ImageRegion> find_image_regions(const std::vector<MapsEntry>& entries, dev_t dev, uint64_t inode);

// Image page shown at virtual address va of region r (va inside r), or nullopt when va lies
// outside the image (mapping past its end, or before page 0). page_size is the image's.
std::optional<uint64_t> image_page_of(const ImageRegion& r, uint64_t va, uint32_t page_size,
                                      uint64_t image_pages);

// Whole text of a /proc file (they report size 0, so read until EOF). Throws snap::Error;
// ENOENT/ESRCH → "process PID is gone"; EACCES/EPERM → CapabilityError.
std::string read_proc_file(pid_t pid, const char* name);
std::vector<MapsEntry> read_maps(pid_t pid);

// Resident set in pages (second field of /proc/PID/statm), nullopt if the process is gone.
std::optional<uint64_t> read_rss_pages(pid_t pid);

// Value of "Key:" in /proc/PID/status (e.g. "Tgid", "TracerPid"), nullopt if absent/gone.
std::optional<std::string> read_status_field(pid_t pid, std::string_view key);
std::optional<std::string> status_field(std::string_view status_text, std::string_view key);

// True if /proc/PID exists (the process or a zombie of it).
bool process_exists(pid_t pid);
// /proc/PID/cmdline as words.
std::vector<std::string> read_cmdline(pid_t pid);

}  // namespace snap::sys

// SPDX-License-Identifier: Apache-2.0
// Page-cache residency of a file (mincore over a mapping that is never touched), and
// dropping a file from the page cache.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace snap::sys {

class FileResidency {
public:
    // Opens and maps the file PROT_READ, MAP_SHARED; nothing is ever read through the
    // mapping, so it faults nothing in. Throws snap::Error naming the file.
    explicit FileResidency(const std::string& path);
    ~FileResidency();
    FileResidency(const FileResidency&) = delete;
    FileResidency& operator=(const FileResidency&) = delete;

    uint64_t size_bytes() const { return size_; }
    // One byte per system page of the file: bit 0 = resident. Sized ceil(size / page).
    const std::vector<unsigned char>& scan();
    uint64_t count_resident();  // scans
    int fd() const { return fd_; }

    // POSIX_FADV_DONTNEED over the whole file. Pages that are mapped or dirty stay.
    void drop_cache();

private:
    std::string path_;
    int fd_ = -1;
    void* map_ = nullptr;
    uint64_t size_ = 0;
    std::vector<unsigned char> vec_;
};

}  // namespace snap::sys

namespace snap::sys {
// read_ahead_kb of the backing device of a file system (st_dev of a file on it), from
// /sys/class/bdi/MAJ:MIN/read_ahead_kb; nullopt when unknown (tmpfs, overlay, …).
std::optional<unsigned> read_ahead_kb(dev_t dev);
}  // namespace snap::sys

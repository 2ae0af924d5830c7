// SPDX-License-Identifier: Apache-2.0
// The page size of a file on hugetlbfs (its mount's, f_bsize), 0 for any other file system.
// Header-only, libc only: snap-restore asks it of paths (the image, a layout file) and the
// preload of the VMM's descriptor.
#pragma once
#include <linux/magic.h>
#include <sys/vfs.h>

#include <cstdint>

namespace snap::sys {

inline uint64_t hugetlbfs_page_bytes(int fd) {
    struct statfs fs {};
    return ::fstatfs(fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC ? uint64_t(fs.f_bsize) : 0;
}

inline uint64_t hugetlbfs_page_bytes(const char* path) {
    struct statfs fs {};
    return ::statfs(path, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC ? uint64_t(fs.f_bsize) : 0;
}

}  // namespace snap::sys

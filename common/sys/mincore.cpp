// SPDX-License-Identifier: Apache-2.0
#include "mincore.hpp"

#include "common/error.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace snap::sys {

FileResidency::FileResidency(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw_errno(path);
    struct stat st {};
    if (::fstat(fd_, &st) < 0) throw_errno(path);
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0) return;
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw_errno("mmap " + path);
    }
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    vec_.resize((size_ + page - 1) / page);
}

FileResidency::~FileResidency() {
    if (map_) ::munmap(map_, size_);
    if (fd_ >= 0) ::close(fd_);
}

const std::vector<unsigned char>& FileResidency::scan() {
    if (map_ && ::mincore(map_, size_, vec_.data()) < 0) throw_errno("mincore " + path_);
    return vec_;
}

uint64_t FileResidency::count_resident() {
    scan();
    return static_cast<uint64_t>(std::count_if(vec_.begin(), vec_.end(), [](unsigned char c) { return c & 1; }));
}

void FileResidency::drop_cache() {
    // Dirty pages (an image written moments ago) survive DONTNEED: write them back first.
    if (::fdatasync(fd_) != 0 && errno != EINVAL && errno != EROFS) throw_errno("fdatasync " + path_);
    int e = ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
    if (e != 0) throw_errno("posix_fadvise(DONTNEED) " + path_, e);
}

}  // namespace snap::sys

namespace snap::sys {

std::optional<unsigned> read_ahead_kb(dev_t dev) {
    std::string path = "/sys/class/bdi/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) +
                       "/read_ahead_kb";
    FILE* f = std::fopen(path.c_str(), "re");
    if (!f) return std::nullopt;
    unsigned kb = 0;
    bool ok = std::fscanf(f, "%u", &kb) == 1;
    std::fclose(f);
    if (!ok) return std::nullopt;
    return kb;
}

}  // namespace snap::sys

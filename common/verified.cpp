// SPDX-License-Identifier: Apache-2.0
// See verified.hpp.
#include "verified.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace snap::verified {

namespace {

std::string entry_line(const struct stat& st, uint64_t digest) {
    char b[160];
    std::snprintf(b, sizeof b, "snapkit-verified-1 %" PRIu64 " %" PRId64 ".%09ld %" PRId64 ".%09ld %016" PRIx64 "\n",
                  static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec,
                  static_cast<int64_t>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec, digest);
    return b;
}

std::string entry_path(const std::string& dir, const struct stat& st) {
    char b[64];
    std::snprintf(b, sizeof b, "/%" PRIx64 "-%" PRIx64, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    return dir + b;
}

}  // namespace

namespace {
std::string find_cache_dir() {
    std::string dir;
    if (const char* c = std::getenv("SNAPKIT_CACHE"); c && *c) dir = c;
    else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = std::string(x) + "/snapkit";
    else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/snapkit";
    else return "";
    dir += "/verified";
    // mkdir -p, private; an existing directory must be ours and not writable by others.
    for (size_t at = 1; at <= dir.size(); ++at) {
        if (at != dir.size() && dir[at] != '/') continue;
        const std::string part = dir.substr(0, at);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return "";
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022)) return "";
    return dir;
}
}  // namespace

std::string cache_dir() {
    static const std::string dir = find_cache_dir();  // once per process: a mkdir -p is not free
    return dir;
}

bool known(const std::string& path, uint64_t digest) {
    const std::string dir = cache_dir();
    struct stat st {};
    if (dir.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    const std::string want = entry_line(st, digest);
    int fd = ::open(entry_path(dir, st).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    char buf[200];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    return n == static_cast<ssize_t>(want.size()) && std::memcmp(buf, want.data(), want.size()) == 0;
}

void remember(const std::string& path, uint64_t digest) {
    const std::string dir = cache_dir();
    struct stat st {};
    if (dir.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    const std::string line = entry_line(st, digest), final_path = entry_path(dir, st);
    std::string tmp = final_path + ".XXXXXX";
    int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0) return;
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    const bool closed = ::close(fd) == 0;
    if (!written || !closed || ::rename(tmp.c_str(), final_path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace snap::verified

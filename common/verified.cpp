// SPDX-License-Identifier: Apache-2.0
// See verified.hpp. An entry is one line:
//   snapkit-verified-1 SIZE MTIME CTIME DIGEST [content]
// (times as seconds.nanoseconds, DIGEST 16 hex digits; "content": DIGEST is the XXH3-64 of the
// whole file, which an image's fingerprint is).
#include "verified.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace snap::verified {

namespace {

constexpr const char* kContentTag = "content";

std::string entry_line(const file::Stamp& st, uint64_t digest, bool content) {
    char b[160];
    std::snprintf(b, sizeof b, "snapkit-verified-1 %" PRIu64 " %" PRId64 ".%09ld %" PRId64 ".%09ld %016" PRIx64 "%s%s\n",
                  st.size, static_cast<int64_t>(st.mtime.tv_sec), st.mtime.tv_nsec, static_cast<int64_t>(st.ctime.tv_sec),
                  st.ctime.tv_nsec, digest, content ? " " : "", content ? kContentTag : "");
    return b;
}

std::string entry_path(const std::string& dir, const file::Stamp& st) {
    char b[64];
    std::snprintf(b, sizeof b, "/%" PRIx64 "-%" PRIx64, st.dev, st.ino);
    return dir + b;
}

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

struct Entry {
    uint64_t digest = 0;
    bool content = false;
};

// The entry remembered for exactly this stamp, if any.
std::optional<Entry> lookup(const file::Stamp& st) {
    const std::string dir = cache_dir();
    if (dir.empty()) return std::nullopt;
    int fd = ::open(entry_path(dir, st).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return std::nullopt;
    char buf[200];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if (n <= 0 || n == sizeof buf) return std::nullopt;
    const std::string line(buf, static_cast<size_t>(n));
    // The stamp part must match byte for byte; then the digest and the optional tag.
    const std::string want = entry_line(st, 0, false);
    const size_t prefix = want.size() - 17;  // everything before the 16 digits and the newline
    if (line.size() < want.size() || line.compare(0, prefix, want, 0, prefix) != 0 || line.back() != '\n') return std::nullopt;
    Entry e;
    char* end = nullptr;
    e.digest = std::strtoull(line.c_str() + prefix, &end, 16);
    if (end != line.c_str() + prefix + 16) return std::nullopt;
    const std::string rest = line.substr(prefix + 16);
    if (rest == "\n") e.content = false;
    else if (rest == std::string(" ") + kContentTag + "\n") e.content = true;
    else return std::nullopt;
    return e;
}

void write_entry(const file::Stamp& st, uint64_t digest, bool content) {
    const std::string dir = cache_dir();
    if (dir.empty()) return;
    const std::string line = entry_line(st, digest, content), final_path = entry_path(dir, st);
    std::string tmp = final_path + ".XXXXXX";
    int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0) return;
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    const bool closed = ::close(fd) == 0;
    if (!written || !closed || ::rename(tmp.c_str(), final_path.c_str()) != 0) ::unlink(tmp.c_str());
}

// The granularity of file timestamps: the coarse clock the kernel stamps files with.
int64_t timestamp_granularity_ns() {
    timespec res{};
    int64_t ns = ::clock_getres(CLOCK_REALTIME_COARSE, &res) == 0 ? res.tv_sec * 1000000000LL + res.tv_nsec : 0;
    return std::max<int64_t>(2 * ns, 10'000'000);  // at least 10 ms
}

int64_t to_ns(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec; }

}  // namespace

std::string cache_dir() {
    static const std::string dir = find_cache_dir();  // once per process: a mkdir -p is not free
    return dir;
}

timespec wall_clock_now() {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    return t;
}

bool known(const std::string& path, uint64_t digest) {
    auto st = file::stamp_of(path);
    if (!st) return false;
    auto e = lookup(*st);
    return e && e->digest == digest;
}

namespace {
// The file still has the stamp it was read under, and that stamp is older than the read by
// more than a clock tick (a write in the same tick as the stamp would not change it).
bool settled(const std::string& path, const file::Stamp& before, timespec started) {
    auto now = file::stamp_of(path);
    if (!now || !(*now == before)) return false;
    return to_ns(before.ctime) + timestamp_granularity_ns() <= to_ns(started);
}
}  // namespace

void remember(const std::string& path, const file::Stamp& before, timespec started, uint64_t digest) {
    if (!settled(path, before, started)) return;
    if (auto e = lookup(before); e && e->digest == digest) return;  // already there (perhaps as the content digest)
    write_entry(before, digest, false);
}

std::optional<uint64_t> content_digest(const file::Stamp& stamp) {
    auto e = lookup(stamp);
    if (!e || !e->content) return std::nullopt;
    return e->digest;
}

bool remember_content_digest(const std::string& path, const file::Stamp& before, timespec started, uint64_t digest) {
    if (!settled(path, before, started)) return false;  // changed while read, or too recent to tell apart
    write_entry(before, digest, true);
    return true;
}

}  // namespace snap::verified

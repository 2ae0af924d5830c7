// SPDX-License-Identifier: Apache-2.0
#include "proc.hpp"

#include "common/error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace snap::sys {

namespace {

// Consume a hexadecimal number from s; false if none.
bool take_hex(std::string_view& s, uint64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out, 16);
    if (r.ec != std::errc() || r.ptr == s.data()) return false;
    s.remove_prefix(static_cast<size_t>(r.ptr - s.data()));
    return true;
}

bool take_dec(std::string_view& s, uint64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out, 10);
    if (r.ec != std::errc() || r.ptr == s.data()) return false;
    s.remove_prefix(static_cast<size_t>(r.ptr - s.data()));
    return true;
}

bool take_char(std::string_view& s, char c) {
    if (s.empty() || s.front() != c) return false;
    s.remove_prefix(1);
    return true;
}

void skip_spaces(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

}  // namespace

std::optional<MapsEntry> parse_maps_line(std::string_view s) {
    if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
    MapsEntry e;
    uint64_t maj = 0, min = 0;
    if (!take_hex(s, e.start) || !take_char(s, '-') || !take_hex(s, e.end) || !take_char(s, ' ')) return std::nullopt;
    if (e.end < e.start || s.size() < 4) return std::nullopt;
    e.read = s[0] == 'r';
    e.write = s[1] == 'w';
    e.exec = s[2] == 'x';
    if (s[3] != 's' && s[3] != 'p') return std::nullopt;
    e.shared = s[3] == 's';
    s.remove_prefix(4);
    if (!take_char(s, ' ') || !take_hex(s, e.offset) || !take_char(s, ' ')) return std::nullopt;
    if (!take_hex(s, maj) || !take_char(s, ':') || !take_hex(s, min) || !take_char(s, ' ')) return std::nullopt;
    if (!take_dec(s, e.inode)) return std::nullopt;
    e.dev_major = static_cast<unsigned>(maj);
    e.dev_minor = static_cast<unsigned>(min);
    // The path starts after the padding; everything after it (spaces included) is the name.
    if (!s.empty() && s.front() != ' ') return std::nullopt;
    skip_spaces(s);
    constexpr std::string_view kDeleted = " (deleted)";
    if (s.size() > kDeleted.size() && s.substr(s.size() - kDeleted.size()) == kDeleted) {
        e.deleted = true;
        s.remove_suffix(kDeleted.size());
    }
    e.path = std::string(s);
    return e;
}

std::vector<MapsEntry> parse_maps(std::string_view text) {
    std::vector<MapsEntry> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (auto e = parse_maps_line(line)) out.push_back(std::move(*e));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::vector<ImageRegion> find_image_regions(const std::vector<MapsEntry>& entries, dev_t dev, uint64_t inode) {
    std::vector<ImageRegion> out;
    unsigned maj = major(dev), min = minor(dev);
    for (auto& e : entries) {
        if (e.inode != inode || e.dev_major != maj || e.dev_minor != min || e.end <= e.start) continue;
        out.push_back({e.start, e.end, e.offset, e.shared, e.write});
    }
    return out;
}

std::optional<uint64_t> image_page_of(const ImageRegion& r, uint64_t va, uint32_t page_size, uint64_t image_pages) {
    if (va < r.start || va >= r.end || page_size == 0) return std::nullopt;
    uint64_t byte = r.file_offset + (va - r.start);
    uint64_t page = byte / page_size;
    if (page >= image_pages) return std::nullopt;
    return page;
}

std::string read_proc_file(pid_t pid, const char* name) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ESRCH) throw Error("process " + std::to_string(pid) + " is gone (" + path + ")");
        if (e == EACCES || e == EPERM)
            throw CapabilityError(path + ": " + std::strerror(e),
                                  "run as root, or as the owner of process " + std::to_string(pid));
        throw_errno(path, e);
    }
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            if (e == ESRCH) throw Error("process " + std::to_string(pid) + " is gone (" + path + ")");
            throw_errno(path, e);
        }
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return text;
}

std::vector<MapsEntry> read_maps(pid_t pid) { return parse_maps(read_proc_file(pid, "maps")); }

std::optional<uint64_t> read_rss_pages(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    std::string_view s(buf, static_cast<size_t>(n));
    uint64_t size = 0, resident = 0;
    if (!take_dec(s, size) || !take_char(s, ' ') || !take_dec(s, resident)) return std::nullopt;
    return resident;
}

std::optional<std::string> status_field(std::string_view text, std::string_view key) {
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
            line.remove_prefix(key.size() + 1);
            skip_spaces(line);
            return std::string(line);
        }
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return std::nullopt;
}

std::optional<std::string> read_status_field(pid_t pid, std::string_view key) {
    try {
        return status_field(read_proc_file(pid, "status"), key);
    } catch (const Error&) {
        return std::nullopt;
    }
}

bool process_exists(pid_t pid) {
    if (pid <= 0) return false;
    std::string path = "/proc/" + std::to_string(pid);
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> read_cmdline(pid_t pid) {
    std::vector<std::string> words;
    std::string text;
    try {
        text = read_proc_file(pid, "cmdline");
    } catch (const Error&) {
        return words;
    }
    size_t pos = 0;
    while (pos < text.size()) {
        size_t z = text.find('\0', pos);
        if (z == std::string::npos) z = text.size();
        words.push_back(text.substr(pos, z - pos));
        pos = z + 1;
    }
    return words;
}

}  // namespace snap::sys

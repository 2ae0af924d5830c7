// SPDX-License-Identifier: Apache-2.0
#include "file.hpp"

#include "error.hpp"
#include "format/container.hpp"
#include "hash.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace snap {

void throw_errno(const std::string& what, int err) { throw Error(what + ": " + std::strerror(err)); }
void throw_errno(const std::string& what) { throw_errno(what, errno); }

}  // namespace snap

namespace snap::file {

namespace {

// Pending temporary files, removed by the signal handler. Fixed-size so that the handler
// touches no allocator.
constexpr int kMaxPending = 16;
char g_pending[kMaxPending][4096];
volatile sig_atomic_t g_pending_used[kMaxPending];
std::mutex g_pending_mutex;

int add_pending(const std::string& path) {
    std::lock_guard lock(g_pending_mutex);
    for (int i = 0; i < kMaxPending; ++i) {
        if (!g_pending_used[i] && path.size() < sizeof g_pending[i]) {
            std::memcpy(g_pending[i], path.c_str(), path.size() + 1);
            g_pending_used[i] = 1;
            return i;
        }
    }
    return -1;
}

void remove_pending(int slot) {
    if (slot < 0) return;
    std::lock_guard lock(g_pending_mutex);
    g_pending_used[slot] = 0;
}

extern "C" void cleanup_and_reraise(int sig) {
    for (int i = 0; i < kMaxPending; ++i)
        if (g_pending_used[i]) unlink(g_pending[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

std::optional<Stamp> stamp_of(const struct stat& st) {
    if (!S_ISREG(st.st_mode)) return std::nullopt;
    return Stamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                 st.st_mtim, st.st_ctim};
}

std::optional<Stamp> stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return std::nullopt;
    return stamp_of(st);
}

std::optional<Stamp> stamp_of_fd(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) < 0) return std::nullopt;
    return stamp_of(st);
}

void install_cleanup_handlers() {
    struct sigaction sa {};
    sa.sa_handler = cleanup_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

void create_placeholder(const std::string& path, uint64_t bytes) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno("create placeholder " + path);
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        int e = errno;
        ::close(fd);
        ::unlink(path.c_str());
        throw_errno("truncate placeholder " + path, e);
    }
    ::close(fd);
}

void write_all(int fd, const void* data, size_t bytes, const std::string& name) {
    auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
        ssize_t n = ::write(fd, p, bytes);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE) throw BrokenPipe{};
            throw_errno("write " + name);
        }
        p += n;
        bytes -= static_cast<size_t>(n);
    }
}

void InputFile::read_stream(int fd, const std::string& name) {
    try {
        read_stream_bounded(fd, name);
    } catch (...) {
        std::free(data_);  // a constructor that throws runs no destructor
        data_ = nullptr;
        size_ = 0;
        throw;
    }
}

void InputFile::read_stream_bounded(int fd, const std::string& name) {
    // A stream has no size to check against: read it with a bound. An artifact stops where
    // its header says it ends (one byte more, so that "extended" is still detected); a stream
    // that does not start like an artifact stops after the header (the reader refuses it);
    // anything else (an image on stdin) at kMaxStreamBytes.
    size_t cap = 0;
    uint64_t limit = kMaxStreamBytes;
    auto grow = [&](size_t need) {
        if (need <= cap) return;
        size_t n = std::max<size_t>(need, cap ? cap * 2 : 65536);
        if (n > limit + 1) n = std::max<size_t>(need, static_cast<size_t>(limit + 1));
        auto* p = static_cast<std::byte*>(std::realloc(data_, n));
        if (!p) throw std::bad_alloc();
        data_ = p;
        cap = n;
    };
    bool limit_known = expect_ != Expect::artifact;
    for (;;) {
        if (expect_ == Expect::artifact && !limit_known) {
            if (size_ >= format::kMagic.size() && std::memcmp(data_, format::kMagic.data(), format::kMagic.size()) != 0) break;
            if (size_ >= format::kHeaderBytes) {
                // A header that fails its checksum says nothing about the length: stop here
                // and let the reader report the mismatch.
                if (format::get_u64(data_ + 56) != hash::xxh3(data_, 56)) break;
                uint64_t claimed = format::get_u64(data_ + 40);  // Header.file_size (container.cpp)
                if (claimed > kMaxStreamBytes)
                    throw BadInput(name, "header claims " + std::to_string(claimed) + " bytes, more than a stream may hold (" +
                                             std::to_string(kMaxStreamBytes) + "); give it as a regular file");
                limit = claimed;
                limit_known = true;
            }
        }
        if (size_ > limit) {
            if (expect_ == Expect::artifact) break;  // the reader reports "extended"
            throw BadInput(name, "stream is longer than " + std::to_string(kMaxStreamBytes) + " bytes; give it as a regular file");
        }
        size_t want = 65536;
        if (expect_ == Expect::artifact && !limit_known) want = format::kHeaderBytes - size_;
        else want = static_cast<size_t>(std::min<uint64_t>(want, limit + 1 - size_));
        grow(size_ + want);
        ssize_t n = ::read(fd, data_ + size_, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read " + name);
        if (n == 0) break;
        size_ += static_cast<size_t>(n);
    }
    if (size_ == 0) {
        std::free(data_);
        data_ = nullptr;
    }
}

InputFile::InputFile(const std::string& path, Expect expect) : path_(path), expect_(expect) {
    if (path.empty()) throw UsageError("an empty file name");
    if (path == "-") {
        read_stream(STDIN_FILENO, "<stdin>");
        return;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(path);
    struct stat st {};
    if (fstat(fd, &st) < 0) {
        int e = errno;
        ::close(fd);
        throw_errno(path, e);
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw Error(path + ": is a directory");
    }
    if (S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode)) {
        // /dev/zero, /dev/urandom, a terminal: no end, or no size to check. Refused.
        ::close(fd);
        throw BadInput(path, std::string("is a ") + (S_ISCHR(st.st_mode) ? "character device" : "socket") +
                                 ", not a file (refused: give a regular file, a block device, a pipe or -)");
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        // A pipe or FIFO given by name: read it like stdin.
        try {
            read_stream(fd, path);
        } catch (...) {
            ::close(fd);
            throw;
        }
        ::close(fd);
        return;
    }
    if (S_ISBLK(st.st_mode)) {  // a block device's st_size is 0: ask the device
        off_t end_off = ::lseek(fd, 0, SEEK_END);
        st.st_size = end_off > 0 ? end_off : 0;
    }
    stamp_ = stamp_of(st);
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            throw_errno("mmap " + path, e);
        }
        data_ = static_cast<std::byte*>(p);
        mapped_ = true;
    }
    ::close(fd);
}

InputFile::~InputFile() {
    if (mapped_) ::munmap(data_, size_);
    else std::free(data_);
}

InputFile::InputFile(InputFile&& o) noexcept
    : path_(std::move(o.path_)), expect_(o.expect_), data_(o.data_), size_(o.size_), mapped_(o.mapped_),
      stamp_(o.stamp_) {
    o.data_ = nullptr;
    o.size_ = 0;
    o.mapped_ = false;
}

InputFile& InputFile::operator=(InputFile&& o) noexcept {
    if (this != &o) {
        this->~InputFile();
        new (this) InputFile(std::move(o));
    }
    return *this;
}

void InputFile::advise_sequential() const {
    if (mapped_ && size_) ::madvise(data_, size_, MADV_SEQUENTIAL);
}

unsigned current_umask() {
    // /proc/self/status has "Umask:\t0022" (Linux >= 4.7): reading it changes nothing, where
    // umask(2) would have to set the mask to read it (racy with other threads creating files).
    if (FILE* f = std::fopen("/proc/self/status", "re")) {
        char line[256];
        unsigned mask = 0;
        bool found = false;
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Umask: %o", &mask) == 1) {
                found = true;
                break;
            }
        std::fclose(f);
        if (found) return mask & 0777;
    }
    mode_t m = ::umask(077);
    ::umask(m);
    return static_cast<unsigned>(m) & 0777;
}

namespace {

// An output path that names one of the process's open descriptors (/dev/stdout, /dev/stderr,
// /dev/fd/N, /proc/self/fd/N): written to that descriptor, like "-" is to stdout — the way to
// hand a report to a pipe other than stdout (--report /dev/fd/3). -1 for any other path.
int descriptor_named(const std::string& path) {
    if (path == "/dev/stdout") return STDOUT_FILENO;
    if (path == "/dev/stderr") return STDERR_FILENO;
    for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
        const std::string p(prefix);
        if (path.size() <= p.size() || path.compare(0, p.size(), p) != 0) continue;
        const std::string n = path.substr(p.size());
        if (n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos) return -1;
        const int fd = std::stoi(n);
        return ::fcntl(fd, F_GETFD) < 0 ? -1 : fd;
    }
    return -1;
}

}  // namespace

AtomicOutput::AtomicOutput(const std::string& path, bool binary, OutputKind kind) : path_(path), kind_(kind) {
    struct stat st {};
    if ((target_fd_ = descriptor_named(path)) >= 0) {
        if (binary && isatty(target_fd_))
            throw UsageError("refusing to write a binary artifact to a terminal", "redirect " + path + " or give -o FILE");
        stream_ = true;
    } else if (path == "-") {
        if (binary && isatty(STDOUT_FILENO))
            throw UsageError("refusing to write a binary artifact to a terminal",
                             "redirect stdout or give -o FILE");
        stream_ = true;
    } else {
        auto slash = path.rfind('/');
        std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
        if (base.empty()) throw UsageError(path + ": output path names a directory");
        // lstat: a symlink at the destination is replaced by the rename, never followed.
        if (::lstat(path.c_str(), &st) == 0) {
            if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory");
            if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) stream_ = true;  // /dev/null, a FIFO
        }
        tmp_ = dir_of(path) + "/." + base + ".tmp.XXXXXX";
    }
    if (stream_) {
        const char* tmpdir = std::getenv("TMPDIR");
        tmp_ = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/snapkit.XXXXXX";
    }
    std::vector<char> name(tmp_.begin(), tmp_.end());
    name.push_back('\0');
    // mkostemp: an unpredictable name, O_EXCL, mode 0600 less the umask.
    fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd_ < 0) throw_errno("cannot create a temporary file for " + (path == "-" ? std::string("<stdout>") : path));
    tmp_ = name.data();
    slot_ = add_pending(tmp_);
}

AtomicOutput::~AtomicOutput() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
    remove_pending(slot_);
}

void AtomicOutput::write(const void* data, size_t bytes) {
    write_all(fd_, data, bytes, tmp_);
    offset_ += bytes;
}

void AtomicOutput::write_behind() {
    constexpr uint64_t kWindow = uint64_t{64} << 20;
    if (offset_ - wb_started_ < kWindow) return;
    // Best effort: a file system without sync_file_range just leaves it all to fsync.
    (void)::sync_file_range(fd_, static_cast<off_t>(wb_started_), static_cast<off_t>(offset_ - wb_started_),
                            SYNC_FILE_RANGE_WRITE);
    if (wb_started_ > wb_waited_) {
        (void)::sync_file_range(fd_, static_cast<off_t>(wb_waited_), static_cast<off_t>(wb_started_ - wb_waited_),
                                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        wb_waited_ = wb_started_;
    }
    wb_started_ = offset_;
}

void AtomicOutput::pwrite(const void* data, size_t bytes, uint64_t offset) {
    auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
        ssize_t n = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("write " + tmp_);
        }
        p += n;
        bytes -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
}

void AtomicOutput::pad_to(uint64_t offset) {
    static const char zeros[4096] = {};
    while (offset_ < offset) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof zeros, offset - offset_));
        write(zeros, n);
    }
}

void AtomicOutput::copy_to(int dst, const std::string& dst_name) {
    if (::lseek(fd_, 0, SEEK_SET) < 0) throw_errno("seek " + tmp_);
    std::vector<char> buf(1 << 16);
    for (;;) {
        ssize_t n = ::read(fd_, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read " + tmp_);
        if (n == 0) break;
        write_all(dst, buf.data(), static_cast<size_t>(n), dst_name);
    }
}

namespace {

// pread all of [off, off+n) or fewer at end of file; returns the bytes read.
size_t pread_full(int fd, std::byte* buf, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::pread(fd, buf + got, n - got, static_cast<off_t>(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<size_t>(r);
    }
    return got;
}

bool same_range(int a, int b, uint64_t off, uint64_t n, std::vector<std::byte>& ba, std::vector<std::byte>& bb) {
    while (n > 0) {
        const size_t k = static_cast<size_t>(std::min<uint64_t>(n, ba.size()));
        if (pread_full(a, ba.data(), k, off) != k || pread_full(b, bb.data(), k, off) != k) return false;
        if (std::memcmp(ba.data(), bb.data(), k) != 0) return false;
        off += k;
        n -= k;
    }
    return true;
}

}  // namespace

bool same_bytes(const std::string& path, int fd) {
    struct stat mine {};
    if (::fstat(fd, &mine) < 0 || !S_ISREG(mine.st_mode)) return false;
    int other = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (other < 0) return false;
    struct stat st {};
    bool same = ::fstat(other, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == mine.st_size;
    if (same) {
        // Reads, not mappings: a destination truncated meanwhile gives a short read (= differs),
        // never SIGBUS. 1 MiB at a time; the ends first (an artifact's trailer holds the checksum
        // of everything before it, its header the sizes), so most changed artifacts are told
        // apart after 128 KiB.
        const uint64_t size = static_cast<uint64_t>(st.st_size);
        constexpr uint64_t kEnd = 64 * 1024;
        std::vector<std::byte> ba(1 << 20), bb(1 << 20);
        if (size <= 2 * kEnd) {
            same = same_range(fd, other, 0, size, ba, bb);
        } else {
            same = same_range(fd, other, size - kEnd, kEnd, ba, bb) && same_range(fd, other, 0, kEnd, ba, bb) &&
                   same_range(fd, other, kEnd, size - 2 * kEnd, ba, bb);
        }
    }
    ::close(other);
    return same;
}

bool AtomicOutput::commit() {
    if (stream_) {
        // Copy the finished temporary to stdout (or the device/FIFO named), then drop it.
        if (path_ == "-") {
            copy_to(STDOUT_FILENO, "<stdout>");
        } else if (target_fd_ >= 0) {
            copy_to(target_fd_, path_);
        } else {
            int dst = ::open(path_.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
            if (dst < 0) throw_errno(path_);
            try {
                copy_to(dst, path_);
            } catch (...) {
                ::close(dst);
                throw;
            }
            if (::close(dst) < 0) throw_errno("close " + path_);
        }
        ::close(fd_);
        fd_ = -1;
        ::unlink(tmp_.c_str());
        committed_ = true;
        return false;
    }
    // mkostemp made the file 0600 less the umask; a report gets what a shell redirection
    // would have given it.
    if (kind_ == OutputKind::report && ::fchmod(fd_, 0666 & ~current_umask()) < 0) throw_errno("chmod " + tmp_);
    // Unchanged: a regular file (lstat: a symlink is replaced as ever) of ours, granting nobody
    // more than the new file would, with exactly these bytes, stays as it is. Its bytes are
    // made durable (fsync: nothing to do if they already were) and the temporary goes; no
    // fsync of the temporary, no rename.
    struct stat dst {}, tmp {};
    if (::lstat(path_.c_str(), &dst) == 0 && S_ISREG(dst.st_mode) && dst.st_uid == ::geteuid() && ::fstat(fd_, &tmp) == 0 &&
        (dst.st_mode & 07777 & ~tmp.st_mode) == 0 && dst.st_size == tmp.st_size && same_bytes(path_, fd_)) {
        int keep = ::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (keep < 0) throw_errno(path_);
        int rc = ::fsync(keep);
        int e = errno;
        ::close(keep);
        if (rc < 0 && e != EINVAL && e != EROFS) throw_errno("fsync " + path_, e);
        ::close(fd_);
        fd_ = -1;
        ::unlink(tmp_.c_str());
        committed_ = true;
        unchanged_ = true;
        return true;
    }
    // Durable before visible: the data reaches the disk before the name points at it (a
    // delayed ENOSPC or EIO surfaces here, not after a "successful" run).
    if (::fsync(fd_) < 0) throw_errno("fsync " + tmp_);
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc < 0) throw_errno("close " + tmp_);
    if (::rename(tmp_.c_str(), path_.c_str()) < 0) throw_errno("rename to " + path_);
    committed_ = true;
    // And the rename itself: fsync the directory. File systems that cannot (EINVAL) have
    // nothing to flush.
    std::string dir = dir_of(path_);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) throw_errno("open directory " + dir);
    rc = ::fsync(dfd);
    int e = errno;
    ::close(dfd);
    if (rc < 0 && e != EINVAL && e != EROFS) throw_errno("fsync directory " + dir, e);
    return false;
}

bool write_report(const std::string& path, std::string_view text) {
    if (path.empty() || path == "-") {
        write_all(STDOUT_FILENO, text.data(), text.size(), "<stdout>");
        return false;
    }
    AtomicOutput out(path, /*binary=*/false, OutputKind::report);
    out.write(text.data(), text.size());
    return out.commit();
}

}  // namespace snap::file

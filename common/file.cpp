#include "file.hpp"

#include "error.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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

void install_cleanup_handlers() {
    struct sigaction sa {};
    sa.sa_handler = cleanup_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
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
    std::vector<std::byte> buf;
    std::byte chunk[65536];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read " + name);
        if (n == 0) break;
        buf.insert(buf.end(), chunk, chunk + n);
    }
    size_ = buf.size();
    if (size_) {
        data_ = static_cast<std::byte*>(std::malloc(size_));
        if (!data_) throw std::bad_alloc();
        std::memcpy(data_, buf.data(), size_);
    }
}

InputFile::InputFile(const std::string& path) : path_(path) {
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
    : path_(std::move(o.path_)), data_(o.data_), size_(o.size_), mapped_(o.mapped_) {
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

AtomicOutput::AtomicOutput(const std::string& path, bool binary) : path_(path) {
    if (path == "-") {
        if (binary && isatty(STDOUT_FILENO))
            throw UsageError("refusing to write a binary artifact to a terminal",
                             "redirect stdout or give -o FILE");
        const char* tmpdir = std::getenv("TMPDIR");
        tmp_ = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/snapkit.XXXXXX";
    } else {
        auto slash = path.rfind('/');
        std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
        if (base.empty()) throw UsageError(path + ": output path names a directory");
        tmp_ = dir_of(path) + "/." + base + ".tmp.XXXXXX";
    }
    std::vector<char> name(tmp_.begin(), tmp_.end());
    name.push_back('\0');
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

void AtomicOutput::commit() {
    if (path_ == "-") {
        // Copy the finished temporary to stdout, then drop it.
        if (::lseek(fd_, 0, SEEK_SET) < 0) throw_errno("seek " + tmp_);
        char buf[1 << 16];
        for (;;) {
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("read " + tmp_);
            if (n == 0) break;
            write_all(STDOUT_FILENO, buf, static_cast<size_t>(n), "<stdout>");
        }
        ::close(fd_);
        fd_ = -1;
        ::unlink(tmp_.c_str());
        committed_ = true;
        return;
    }
    if (::fchmod(fd_, 0644) < 0) throw_errno("chmod " + tmp_);
    if (::close(fd_) < 0) {
        fd_ = -1;
        throw_errno("close " + tmp_);
    }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) < 0) throw_errno("rename to " + path_);
    committed_ = true;
}

}  // namespace snap::file

// SPDX-License-Identifier: Apache-2.0
// The userfaultfd syscall layer (see uffd.hpp). Kernel return conventions handled here:
// UFFDIO_COPY/ZEROPAGE/CONTINUE store "bytes done" or a negative errno in the struct's result
// field and fail with EAGAIN when they stopped part-way; a stop at an existing page reports
// EEXIST only when nothing was done in that call.
#include "uffd.hpp"

#include "common/error.hpp"
#include "wire.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace snap::uffd {

namespace {

constexpr const char* kHint =
    "run as root, or set sysctl vm.unprivileged_userfaultfd=1, or grant read/write access to /dev/userfaultfd";

// A userfaultfd before UFFDIO_API (opened by the unit the preload shares).
int open_raw(bool nonblocking) {
    int fd = wire::open_userfaultfd(nonblocking);
    if (fd >= 0) return fd;
    if (fd == -ENOSYS) throw CapabilityError("userfaultfd: not supported by this kernel", "a kernel with CONFIG_USERFAULTFD is needed");
    throw CapabilityError(std::string("userfaultfd: ") + std::strerror(-fd), kHint);
}

uint64_t api(int fd, uint64_t features) {
    uint64_t granted = 0;
    if (int rc = wire::api(fd, features, &granted); rc != 0) {
        ::close(fd);
        throw CapabilityError(std::string("userfaultfd: UFFDIO_API: ") + std::strerror(-rc),
                              "the kernel refused the requested features: " + feature_names(features));
    }
    return granted;
}

// Map the result field (bytes done, or -errno) and errno of a resolving ioctl to a Result.
// Returns true when the caller should issue the ioctl again for the rest of the range.
bool classify(int rc, int64_t field, uint64_t len, Result& r, const char* what) {
    if (rc == 0) {
        r.bytes = len;
        r.status = Status::done;
        return false;
    }
    int err = errno;
    if (field > 0) {  // partial: continue after what was done
        r.bytes += static_cast<uint64_t>(field);
        return true;
    }
    int code = field < 0 ? static_cast<int>(-field) : err;
    switch (code) {
    case EEXIST: r.status = Status::exists; return false;
    case EAGAIN: r.status = Status::again; return false;
    case ENOENT:
    case ESRCH: r.status = Status::gone; return false;
    default: throw_errno(std::string("userfaultfd: ") + what, code);
    }
}

}  // namespace

std::string feature_names(uint64_t f) {
    static const std::pair<uint64_t, const char*> names[] = {
        {UFFD_FEATURE_PAGEFAULT_FLAG_WP, "pagefault_flag_wp"},
        {UFFD_FEATURE_EVENT_FORK, "event_fork"},
        {UFFD_FEATURE_EVENT_REMAP, "event_remap"},
        {UFFD_FEATURE_EVENT_REMOVE, "event_remove"},
        {UFFD_FEATURE_MISSING_HUGETLBFS, "missing_hugetlbfs"},
        {UFFD_FEATURE_MISSING_SHMEM, "missing_shmem"},
        {UFFD_FEATURE_EVENT_UNMAP, "event_unmap"},
        {UFFD_FEATURE_SIGBUS, "sigbus"},
        {UFFD_FEATURE_THREAD_ID, "thread_id"},
        {UFFD_FEATURE_MINOR_HUGETLBFS, "minor_hugetlbfs"},
        {UFFD_FEATURE_MINOR_SHMEM, "minor_shmem"},
        {UFFD_FEATURE_EXACT_ADDRESS, "exact_address"},
        {UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "wp_hugetlbfs_shmem"},
        {kFeatureWpUnpopulated, "wp_unpopulated"},
        {kFeaturePoison, "poison"},
        {kFeatureWpAsync, "wp_async"},
        {kFeatureMove, "move"},
    };
    std::string out;
    for (auto& [bit, name] : names) {
        if (!(f & bit)) continue;
        if (!out.empty()) out += '|';
        out += name;
        f &= ~bit;
    }
    if (f) {
        if (!out.empty()) out += '|';
        out += "0x" + [&] { char b[20]; std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(f)); return std::string(b); }();
    }
    return out.empty() ? "none" : out;
}

const char* status_name(Status s) {
    switch (s) {
    case Status::done: return "done";
    case Status::exists: return "exists";
    case Status::again: return "again";
    case Status::gone: return "gone";
    }
    return "?";
}

Userfaultfd::~Userfaultfd() {
    if (fd_ >= 0) ::close(fd_);
}

Userfaultfd::Userfaultfd(Userfaultfd&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), features_(o.features_), ioctls_(o.ioctls_.load()) {}

Userfaultfd& Userfaultfd::operator=(Userfaultfd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        features_ = o.features_;
        ioctls_ = o.ioctls_.load();
    }
    return *this;
}

int Userfaultfd::release() { return std::exchange(fd_, -1); }

uint64_t Userfaultfd::available_features() {
    int fd = open_raw(true);
    uint64_t f = api(fd, 0);  // features=0: the kernel answers with everything it offers
    ::close(fd);
    return f;
}

Userfaultfd Userfaultfd::create(uint64_t required, uint64_t wanted, bool nonblocking) {
    uint64_t offered = available_features();
    if ((offered & required) != required)
        throw CapabilityError("userfaultfd: kernel lacks features " + feature_names(required & ~offered),
                              "a newer kernel is needed (offered: " + feature_names(offered) + ")");
    int fd = open_raw(nonblocking);
    uint64_t ask = (required | wanted) & offered;
    api(fd, ask);
    return Userfaultfd(fd, ask);
}

Userfaultfd Userfaultfd::adopt(int fd, uint64_t assumed_features) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return Userfaultfd(fd, assumed_features);
}

uint64_t Userfaultfd::register_range(uint64_t addr, uint64_t len, uint64_t modes) {
    uint64_t ioctls = 0;
    ++ioctls_;
    if (int rc = wire::register_range(fd_, addr, len, modes, &ioctls); rc != 0) {
        int err = -rc;
        std::string mode = (modes & UFFDIO_REGISTER_MODE_MISSING) ? "missing" : "";
        if (modes & UFFDIO_REGISTER_MODE_WP) mode += mode.empty() ? "wp" : "|wp";
        if (modes & UFFDIO_REGISTER_MODE_MINOR) mode += mode.empty() ? "minor" : "|minor";
        throw_errno("userfaultfd: register " + mode, err);
    }
    return ioctls;
}

void Userfaultfd::unregister_range(uint64_t addr, uint64_t len) {
    uffdio_range r{addr, len};
    ++ioctls_;
    if (::ioctl(fd_, UFFDIO_UNREGISTER, &r) != 0 && errno != ENOENT) throw_errno("userfaultfd: unregister");
}

Result Userfaultfd::copy(uint64_t dst, const void* src, uint64_t len, bool wake, bool write_protect) {
    Result r;
    auto s = reinterpret_cast<uint64_t>(src);
    while (r.bytes < len) {
        uffdio_copy c{};
        c.dst = dst + r.bytes;
        c.src = s + r.bytes;
        c.len = len - r.bytes;
        c.mode = (wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE) | (write_protect ? UFFDIO_COPY_MODE_WP : 0);
        ++ioctls_;
        uint64_t before = r.bytes;
        int rc = ::ioctl(fd_, UFFDIO_COPY, &c);
        if (rc == 0) { r.bytes = len; break; }
        if (!classify(rc, c.copy, len, r, "UFFDIO_COPY")) return r;
        if (r.bytes == before) break;  // no progress: cannot happen, but never spin
    }
    r.status = Status::done;
    return r;
}

Result Userfaultfd::zeropage(uint64_t dst, uint64_t len, bool wake) {
    Result r;
    while (r.bytes < len) {
        uffdio_zeropage z{};
        z.range.start = dst + r.bytes;
        z.range.len = len - r.bytes;
        z.mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE;
        ++ioctls_;
        uint64_t before = r.bytes;
        int rc = ::ioctl(fd_, UFFDIO_ZEROPAGE, &z);
        if (rc == 0) { r.bytes = len; break; }
        if (!classify(rc, z.zeropage, len, r, "UFFDIO_ZEROPAGE")) return r;
        if (r.bytes == before) break;
    }
    r.status = Status::done;
    return r;
}

Result Userfaultfd::continue_minor(uint64_t dst, uint64_t len, bool wake) {
    Result r;
    while (r.bytes < len) {
        uffdio_continue c{};
        c.range.start = dst + r.bytes;
        c.range.len = len - r.bytes;
        c.mode = wake ? 0 : UFFDIO_CONTINUE_MODE_DONTWAKE;
        ++ioctls_;
        uint64_t before = r.bytes;
        int rc = ::ioctl(fd_, UFFDIO_CONTINUE, &c);
        if (rc == 0) { r.bytes = len; break; }
        if (!classify(rc, c.mapped, len, r, "UFFDIO_CONTINUE")) return r;
        if (r.bytes == before) break;
    }
    r.status = Status::done;
    return r;
}

Result Userfaultfd::writeprotect(uint64_t addr, uint64_t len, bool protect, bool wake) {
    uffdio_writeprotect w{};
    w.range.start = addr;
    w.range.len = len;
    w.mode = (protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0) | (wake ? 0 : UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
    ++ioctls_;
    Result r;
    if (::ioctl(fd_, UFFDIO_WRITEPROTECT, &w) == 0) {
        r.bytes = len;
        return r;
    }
    classify(-1, 0, len, r, "UFFDIO_WRITEPROTECT");
    return r;
}

void Userfaultfd::wake(uint64_t addr, uint64_t len) {
    uffdio_range w{addr, len};
    ++ioctls_;
    if (::ioctl(fd_, UFFDIO_WAKE, &w) != 0 && errno != ENOENT && errno != ESRCH) throw_errno("userfaultfd: UFFDIO_WAKE");
}

size_t Userfaultfd::read_events(std::span<uffd_msg> out) {
    for (;;) {
        ssize_t n = ::read(fd_, out.data(), out.size_bytes());
        if (n >= 0) return static_cast<size_t>(n) / sizeof(uffd_msg);
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        throw_errno("userfaultfd: read");
    }
}

}  // namespace snap::uffd

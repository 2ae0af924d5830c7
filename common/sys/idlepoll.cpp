// SPDX-License-Identifier: Apache-2.0
#include "idlepoll.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace snap::sys {

namespace {
constexpr const char* kDevice = "/dev/cpu_dma_latency";

// The device takes a binary s32; -1 (PM_QOS_DEFAULT_VALUE) puts the request back to the
// default, no constraint.
bool write_request(int fd, int32_t us) { return ::write(fd, &us, sizeof us) == static_cast<ssize_t>(sizeof us); }
}  // namespace

uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

IdlePolling::IdlePolling() {
    fd_ = ::open(kDevice, O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) why_ = std::string(kDevice) + ": " + std::strerror(errno);
}

IdlePolling::~IdlePolling() {
    if (fd_ >= 0) ::close(fd_);  // drops the request
}

void IdlePolling::hold() {
    if (fd_ < 0 || held_) return;
    if (!write_request(fd_, 0)) return;
    held_ = true;
    ++windows_;
    since_ = monotonic_ns();
}

void IdlePolling::release() {
    if (!held_) return;
    held_ = false;
    held_ns_ += monotonic_ns() - since_;
    if (!write_request(fd_, -1)) {  // cannot happen for a valid value; never leave it held
        ::close(fd_);
        fd_ = -1;
        why_ = std::string(kDevice) + ": the request could not be released, so it was dropped";
    }
}

uint64_t IdlePolling::held_ns() const { return held_ns_ + (held_ ? monotonic_ns() - since_ : 0); }

int64_t IdlePolling::current_limit_us() {
    // Opening the device adds a request of its own, with no constraint: it does not change
    // the value read.
    const int fd = ::open(kDevice, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int32_t v = 0;
    const ssize_t n = ::read(fd, &v, sizeof v);
    ::close(fd);
    return n == static_cast<ssize_t>(sizeof v) ? v : -1;
}

}  // namespace snap::sys

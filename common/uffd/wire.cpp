// SPDX-License-Identifier: Apache-2.0
// See wire.hpp. libc only: this file is linked into the preload as well as snapcommon.
#include "wire.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace snap::uffd::wire {

int open_userfaultfd(bool nonblocking) {
    // Kernel-mode faults must be served too (KVM touches guest memory from the kernel), so
    // UFFD_USER_MODE_ONLY is not asked for.
    const int flags = O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0);
    int fd = static_cast<int>(::syscall(SYS_userfaultfd, flags));
    if (fd >= 0) return fd;
    const int first = errno;
    if (first == ENOSYS) return -ENOSYS;
    int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return -first;
    fd = ::ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    const int err = errno;
    ::close(dev);
    return fd >= 0 ? fd : -err;
}

int api(int fd, uint64_t features, uint64_t* granted) {
    uffdio_api a{};
    a.api = UFFD_API;
    a.features = features;
    if (::ioctl(fd, UFFDIO_API, &a) != 0) return -errno;
    if (granted) *granted = a.features;
    return 0;
}

int register_range(int fd, uint64_t addr, uint64_t len, uint64_t modes, uint64_t* ioctls) {
    uffdio_register r{};
    r.range.start = addr;
    r.range.len = len;
    r.mode = modes;
    if (::ioctl(fd, UFFDIO_REGISTER, &r) != 0) return -errno;
    if (ioctls) *ioctls = r.ioctls;
    return 0;
}

int send_handshake(const std::string& path, const std::string& text, int fd) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) return -ENAMETOOLONG;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int e = errno;
        ::close(s);
        return -e;
    }
    iovec iov{const_cast<char*>(text.data()), text.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do n = ::sendmsg(s, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    size_t sent = n > 0 ? size_t(n) : 0;
    while (n >= 0 && sent < text.size()) {  // the rest of a long message, without the descriptor
        n = ::send(s, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n > 0) sent += size_t(n);
    }
    if (n < 0) {
        int e = errno;
        ::close(s);
        return -e;
    }
    return s;
}

int wait_ready(int sock) {
    for (;;) {
        char b = 0;
        ssize_t n = ::recv(sock, &b, 1, 0);
        if (n == 1) return 0;
        if (n == 0) return -EPIPE;
        if (errno != EINTR) return -errno;
    }
}

long receive(int sock, std::string* text, int* fd, size_t max_bytes) {
    char buf[16384];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    iovec iov{buf, max_bytes < sizeof buf ? max_bytes : sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
            int got;
            std::memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof got);
            if (*fd < 0) *fd = got;
            else ::close(got);  // only one descriptor is part of the protocol
        }
    }
    text->append(buf, static_cast<size_t>(n));
    return n;
}

int send_ready(int sock) {
    const char b = 'R';
    for (;;) {
        ssize_t n = ::send(sock, &b, 1, MSG_NOSIGNAL);
        if (n == 1) return 0;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -errno : -EPIPE;
    }
}

}  // namespace snap::uffd::wire

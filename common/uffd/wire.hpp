// SPDX-License-Identifier: Apache-2.0
// The small userfaultfd unit that snap-restore and its preload share, with no dependency
// beyond libc (the preload links it into the VMM): opening a userfaultfd, and both ends of
// Firecracker's handshake socket — the message of regions with the descriptor as SCM_RIGHTS,
// and the one-byte "ready" that snapkit's own peers (the preload) wait for once the eager
// installs are done (Firecracker never reads it: nothing else is said on its socket). Every
// function returns -errno (or a negative value) instead of throwing; the callers word errors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace snap::uffd::wire {

// userfaultfd(2) with O_CLOEXEC (and O_NONBLOCK), falling back to /dev/userfaultfd's
// USERFAULTFD_IOC_NEW. Returns the descriptor or -errno.
int open_userfaultfd(bool nonblocking);
// UFFDIO_API asking for `features`; returns 0 and what the kernel granted, or -errno.
int api(int fd, uint64_t features, uint64_t* granted);
// UFFDIO_REGISTER; returns 0 (ioctls the range supports in *ioctls if not null) or -errno.
int register_range(int fd, uint64_t addr, uint64_t len, uint64_t modes, uint64_t* ioctls);

// Client side (the VMM): connect to the unix socket at path, send text with fd attached.
// Returns the connected socket (keep it open: its end tells the peer's death) or -errno.
int send_handshake(const std::string& path, const std::string& text, int fd);
// Block until the server's ready byte arrives. 0 on it, -EPIPE when the server closed the
// socket first, -errno otherwise.
int wait_ready(int sock);

// Server side: receive one message (up to max_bytes) from a connected socket, collecting the
// first descriptor passed with it (*fd, -1 if none; further ones are closed). Appends to
// *text. Returns bytes read (0 at end of stream) or -errno.
long receive(int sock, std::string* text, int* fd, size_t max_bytes);
// Tell the peer the eager phase is done. 0 or -errno (-EPIPE: the peer is gone).
int send_ready(int sock);

}  // namespace snap::uffd::wire

// SPDX-License-Identifier: Apache-2.0
// The userfaultfd syscall layer: the only place in snapkit that issues userfaultfd ioctls.
// Everything above it (FaultServer, the Firecracker front-end) sees typed results instead of
// errno: a page that is already there (EEXIST) is not an error, a mapping that changed under
// us (EAGAIN) means "read the pending events, then retry", a target that is gone (ESRCH,
// ENOENT) ends the service.
#pragma once
#include <linux/userfaultfd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace snap::uffd {

// Feature bits newer than Debian 12's <linux/userfaultfd.h> (kernel ABI, stable).
constexpr uint64_t kFeatureWpUnpopulated = 1ull << 13;
constexpr uint64_t kFeaturePoison = 1ull << 14;
constexpr uint64_t kFeatureWpAsync = 1ull << 15;
constexpr uint64_t kFeatureMove = 1ull << 16;

// "pagefault_flag_wp|event_remove|…" for messages and JSON.
std::string feature_names(uint64_t features);

// How one resolving ioctl ended. bytes = how much it did before it stopped (page multiple).
enum class Status {
    done,    // the whole range
    exists,  // stopped at a page that is already mapped (EEXIST): skip it and go on
    again,   // the address space is changing (a REMOVE/UNMAP/REMAP event is pending): read events, retry
    gone,    // the range or the whole target process is gone (ENOENT, ESRCH)
};
const char* status_name(Status s);

struct Result {
    Status status = Status::done;
    uint64_t bytes = 0;
    bool ok() const { return status == Status::done; }
};

// One userfaultfd, owned (closed on destruction). Not thread-safe for reads; the resolving
// ioctls may be issued from any thread.
class Userfaultfd {
public:
    Userfaultfd() = default;
    ~Userfaultfd();
    Userfaultfd(Userfaultfd&& o) noexcept;
    Userfaultfd& operator=(Userfaultfd&& o) noexcept;
    Userfaultfd(const Userfaultfd&) = delete;
    Userfaultfd& operator=(const Userfaultfd&) = delete;

    // A new userfaultfd for this process (userfaultfd(2); falls back to /dev/userfaultfd and
    // USERFAULTFD_IOC_NEW), handshaken with UFFDIO_API asking for `wanted` features that the
    // kernel offers. Features in `required` that the kernel lacks → CapabilityError (exit 4),
    // as is a userfaultfd that cannot be created (with a hint: root, vm.unprivileged_userfaultfd).
    static Userfaultfd create(uint64_t required, uint64_t wanted = 0, bool nonblocking = true);
    // Adopt a descriptor another process created and handshook (Firecracker sends one):
    // UFFDIO_API cannot be repeated, so the caller states what it assumes was negotiated.
    static Userfaultfd adopt(int fd, uint64_t assumed_features);
    // What UFFDIO_API offers on this kernel (CapabilityError if userfaultfd is unusable).
    static uint64_t available_features();

    int fd() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    uint64_t features() const { return features_; }
    bool has(uint64_t feature) const { return (features_ & feature) == feature; }
    int release();  // give up ownership

    // UFFDIO_REGISTER (modes: UFFDIO_REGISTER_MODE_MISSING | _WP | _MINOR). Returns the
    // ioctls the range supports (bit _UFFDIO_COPY etc.). Throws Error (EINVAL names the mode).
    uint64_t register_range(uint64_t addr, uint64_t len, uint64_t modes);
    void unregister_range(uint64_t addr, uint64_t len);

    // Resolving ioctls. wake=false leaves the faulting threads asleep (batching: wake later).
    // Partial copies are continued internally; a stop is reported, never thrown.
    Result copy(uint64_t dst, const void* src, uint64_t len, bool wake = true, bool write_protect = false);
    Result zeropage(uint64_t dst, uint64_t len, bool wake = true);
    Result continue_minor(uint64_t dst, uint64_t len, bool wake = true);
    Result writeprotect(uint64_t addr, uint64_t len, bool protect, bool wake = true);
    void wake(uint64_t addr, uint64_t len);

    // Read up to out.size() messages without blocking (the descriptor is non-blocking).
    // Returns how many were read (0: nothing pending).
    size_t read_events(std::span<uffd_msg> out);

    uint64_t ioctl_count() const { return ioctls_.load(std::memory_order_relaxed); }

private:
    explicit Userfaultfd(int fd, uint64_t features) : fd_(fd), features_(features) {}
    int fd_ = -1;
    uint64_t features_ = 0;
    std::atomic<uint64_t> ioctls_{0};  // resolving ioctls may come from several installer threads
};

}  // namespace snap::uffd

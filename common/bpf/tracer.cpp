// SPDX-License-Identifier: Apache-2.0
// Loader/consumer of record.bpf.c (see tracer.hpp). All libbpf calls live here.
#include "common/bpf/tracer.hpp"

#include "common/cli.hpp"
#include "common/error.hpp"
#include "record.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

namespace snap::bpf {

namespace {

const char* kBtfPath = "/sys/kernel/btf/vmlinux";
const char* kNoBpfHint = "run as root (or with CAP_BPF and CAP_PERFMON), or use --method pagemap";

bool path_exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

std::string read_first_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// Effective capability bits from /proc/self/status (no libcap needed).
uint64_t effective_caps() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("CapEff:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 16);
    return 0;
}

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG || !cli::globals().verbose) return 0;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, args);
    std::string s(buf, n > 0 ? std::min<size_t>(n, sizeof buf - 1) : 0);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    if (!s.empty()) cli::info("libbpf: " + s);
    return 0;
}

// Where tracefs is, mounting it on its usual place when nothing is mounted (libbpf needs the
// tracepoint ids from it to attach).
std::string tracefs_root() {
    static std::string root;
    if (!root.empty()) return root;
    for (const char* p : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
        if (path_exists(std::string(p) + "/events")) return root = p;
    if (::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 &&
        path_exists("/sys/kernel/tracing/events")) {
        cli::info("mounted tracefs on /sys/kernel/tracing");
        return root = "/sys/kernel/tracing";
    }
    throw CapabilityError(std::string("bpf: tracefs is not mounted and mounting it failed: ") + std::strerror(errno),
                          "mount -t tracefs nodev /sys/kernel/tracing");
}

[[noreturn]] void load_error(const std::string& what, int err) {
    if (err == EPERM || err == EACCES)
        throw CapabilityError("bpf: " + what + ": " + std::strerror(err), kNoBpfHint);
    throw_errno("bpf: " + what, err);
}

}  // namespace

void check_available() {
    uint64_t caps = effective_caps();
    constexpr uint64_t kSysAdmin = 1ull << 21, kPerfmon = 1ull << 38, kBpf = 1ull << 39;
    bool permitted = ::geteuid() == 0 || (caps & kSysAdmin) || ((caps & kBpf) && (caps & kPerfmon));
    if (!permitted) throw CapabilityError("bpf: not permitted (needs root, or CAP_BPF and CAP_PERFMON)", kNoBpfHint);
    if (!path_exists(kBtfPath))
        throw CapabilityError(std::string("bpf: kernel BTF is missing (") + kBtfPath + ")",
                              "use a kernel built with CONFIG_DEBUG_INFO_BTF=y, or use --method pagemap");
}

Paging detect_kvm_paging() {
    auto yes = [](const std::string& v) { return v == "Y" || v == "y" || v == "1"; };
    if (path_exists("/sys/module/kvm_intel/parameters/ept"))
        return yes(read_first_line("/sys/module/kvm_intel/parameters/ept")) ? Paging::tdp : Paging::shadow;
    if (path_exists("/sys/module/kvm_amd/parameters/npt"))
        return yes(read_first_line("/sys/module/kvm_amd/parameters/npt")) ? Paging::tdp : Paging::shadow;
    if (path_exists("/sys/module/kvm")) return Paging::shadow;  // PVM and other software MMUs
    return Paging::none;
}

const char* paging_name(Paging p) {
    switch (p) {
        case Paging::tdp: return "tdp";
        case Paging::shadow: return "shadow";
        default: return "none";
    }
}

bool tracepoint_exists(const std::string& category, const std::string& name) {
    return path_exists(tracefs_root() + "/events/" + category + "/" + name + "/id");
}

struct Tracer::Impl {
    record_bpf* skel = nullptr;
    ring_buffer* rb = nullptr;
    std::vector<bpf_link*> links;
    std::vector<std::string> attached;
    EventSink sink;
    std::thread thread;
    std::atomic<bool> stopping{false};
    bool stopped = false;
    bool vma_cache = false;

    static int on_event(void* ctx, void* data, size_t size) {
        auto* self = static_cast<Impl*>(ctx);
        if (size < sizeof(snapbpf_event)) return 0;
        snapbpf_event ev;
        std::memcpy(&ev, data, sizeof ev);
        self->sink(ev);
        return 0;
    }

    void attach(bpf_program* prog, const char* category, const char* name) {
        bpf_link* link = bpf_program__attach_tracepoint(prog, category, name);
        if (!link) load_error(std::string("attach ") + category + ":" + name, errno);
        links.push_back(link);
        attached.push_back(std::string(category) + ":" + name);
    }

    void detach() {
        for (auto* l : links) bpf_link__destroy(l);
        links.clear();
    }

    ~Impl() {
        detach();
        if (rb) ring_buffer__free(rb);
        if (skel) record_bpf__destroy(skel);
    }
};

Tracer::Tracer(const TracerConfig& cfg, EventSink sink) : impl_(std::make_unique<Impl>()) {
    check_available();
    libbpf_set_print(libbpf_log);
    impl_->sink = std::move(sink);

    // Which tracepoints exist decides which programs load: a program whose record type is
    // missing from BTF (kvm not built) would fail CO-RE relocation.
    struct Want {
        bool on;
        const char *category, *name;
    };
    const Want wants[] = {
        {cfg.want_user, "exceptions", "page_fault_user"},
        {cfg.want_user, "exceptions", "page_fault_kernel"},
        {cfg.want_kvm_fault, "kvm", "kvm_page_fault"},
        {cfg.want_kvm_spte, "kvmmmu", "kvm_mmu_set_spte"},
        {cfg.follow_forks, "sched", "sched_process_fork"},
    };
    for (auto& w : wants)
        if (w.on && !tracepoint_exists(w.category, w.name))
            throw CapabilityError(std::string("bpf: tracepoint ") + w.category + ":" + w.name + " does not exist",
                                  std::string(w.category).rfind("kvm", 0) == 0
                                      ? "load the kvm module, or record with --bpf-source user"
                                      : "this kernel lacks the tracepoint; use --method pagemap");

    // The mapping cache needs to hear of every address-space change (syscall tracepoints,
    // CONFIG_FTRACE_SYSCALLS); without them each fault looks its mapping up afresh (slow).
    static const char* const kInvalidating[] = {"mmap", "munmap", "mremap", "brk"};
    bool vma_cache = cfg.want_user && cfg.resolve_in_kernel && tracepoint_exists("sched", "sched_process_exec");
    for (const char* sc : kInvalidating)
        vma_cache = vma_cache && tracepoint_exists("syscalls", std::string("sys_enter_") + sc) &&
                    tracepoint_exists("syscalls", std::string("sys_exit_") + sc);
    impl_->vma_cache = vma_cache;

    // open
    auto* skel = record_bpf__open();
    if (!skel) load_error("open", errno);
    impl_->skel = skel;

    // configure
    skel->rodata->image_ino = cfg.image_ino;
    skel->rodata->image_dev = (static_cast<uint32_t>(major(cfg.image_dev)) << 20) | minor(cfg.image_dev);
    skel->rodata->resolve_in_kernel = cfg.resolve_in_kernel;
    skel->rodata->spte_accessed_mask = cfg.spte_accessed_mask;
    skel->rodata->follow_forks = cfg.follow_forks;
    skel->rodata->use_vma_cache = vma_cache;
    uint64_t rb = 4096;
    while (rb < cfg.ringbuf_bytes && rb < (1ull << 30)) rb <<= 1;
    bpf_map__set_max_entries(skel->maps.events, static_cast<uint32_t>(rb));
    skel->rodata->wakeup_bytes = rb / 4;
    bpf_map__set_max_entries(skel->maps.seen, std::max<uint32_t>(cfg.dedup_entries, 1024));
    bpf_program__set_autoload(skel->progs.snap_fault_user, cfg.want_user);
    bpf_program__set_autoload(skel->progs.snap_fault_kernel, cfg.want_user);
    bpf_program__set_autoload(skel->progs.snap_kvm_fault, cfg.want_kvm_fault);
    bpf_program__set_autoload(skel->progs.snap_kvm_spte, cfg.want_kvm_spte);
    bpf_program__set_autoload(skel->progs.snap_fork, cfg.follow_forks);
    bpf_program* invalidating[] = {
        skel->progs.snap_enter_mmap,   skel->progs.snap_exit_mmap,   skel->progs.snap_enter_munmap,
        skel->progs.snap_exit_munmap,  skel->progs.snap_enter_mremap, skel->progs.snap_exit_mremap,
        skel->progs.snap_enter_brk,    skel->progs.snap_exit_brk,    skel->progs.snap_exec,
    };
    for (auto* p : invalidating) bpf_program__set_autoload(p, vma_cache);

    // load
    if (int err = record_bpf__load(skel)) load_error("load", -err);

    // attach
    if (cfg.want_user) {
        impl_->attach(skel->progs.snap_fault_user, "exceptions", "page_fault_user");
        impl_->attach(skel->progs.snap_fault_kernel, "exceptions", "page_fault_kernel");
    }
    if (cfg.want_kvm_fault) impl_->attach(skel->progs.snap_kvm_fault, "kvm", "kvm_page_fault");
    if (cfg.want_kvm_spte) impl_->attach(skel->progs.snap_kvm_spte, "kvmmmu", "kvm_mmu_set_spte");
    if (cfg.follow_forks) impl_->attach(skel->progs.snap_fork, "sched", "sched_process_fork");
    if (vma_cache) {
        for (size_t i = 0; i < 8; ++i)
            impl_->attach(invalidating[i], "syscalls",
                          ((i % 2 ? "sys_exit_" : "sys_enter_") + std::string(kInvalidating[i / 2])).c_str());
        impl_->attach(skel->progs.snap_exec, "sched", "sched_process_exec");
    }

    impl_->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), &Impl::on_event, impl_.get(), nullptr);
    if (!impl_->rb) load_error("ring buffer", errno);
}

Tracer::~Tracer() {
    if (impl_ && impl_->thread.joinable()) {
        impl_->stopping = true;
        impl_->thread.join();
    }
}

void Tracer::trace(pid_t tgid) {
    uint32_t key = static_cast<uint32_t>(tgid);
    uint8_t one = 1;
    if (bpf_map__update_elem(impl_->skel->maps.tgids, &key, sizeof key, &one, sizeof one, BPF_ANY))
        load_error("trace pid " + std::to_string(tgid), errno);
}

void Tracer::start() {
    Impl* impl = impl_.get();
    impl->thread = std::thread([impl] {
        while (!impl->stopping.load(std::memory_order_relaxed)) {
            // Events come without wakeups (see record.bpf.c): wait for a wakeup (a quarter
            // full) or 20 ms, whichever is first, then drain.
            int n = ring_buffer__poll(impl->rb, 20);
            if (n < 0 && n != -EINTR) break;
            ring_buffer__consume(impl->rb);
        }
    });
}

void Tracer::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->stopping = true;
    if (impl_->thread.joinable()) impl_->thread.join();
    impl_->detach();
    ring_buffer__consume(impl_->rb);
}

void Tracer::add_kernel_counters(Counters& c) const {
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return;
    std::vector<uint64_t> values(ncpu);
    auto sum = [&](uint32_t idx) -> uint64_t {
        if (bpf_map__lookup_elem(impl_->skel->maps.stats, &idx, sizeof idx, values.data(),
                                 values.size() * sizeof(uint64_t), 0))
            return 0;
        uint64_t s = 0;
        for (auto v : values) s += v;
        return s;
    };
    c.lost += sum(SNAPBPF_STAT_LOST);
    c.dedup_full += sum(SNAPBPF_STAT_DEDUP_FULL);
    c.vma_busy += sum(SNAPBPF_STAT_VMA_BUSY);
    c.prefetch_skipped += sum(SNAPBPF_STAT_PREFETCH);
    c.other_file += sum(SNAPBPF_STAT_OTHER_FILE);
    c.faults += sum(SNAPBPF_STAT_FAULTS);
}

std::vector<std::string> Tracer::attached() const { return impl_->attached; }

bool Tracer::vma_cache() const { return impl_->vma_cache; }

}  // namespace snap::bpf

// SPDX-License-Identifier: Apache-2.0
// snap-restore --exec: build the strategy's schedule, hand it to libsnaprestore.so through a
// private file, run the VMM with the library preloaded, wait for it, and report what the
// library did (it writes its report to a file when the plan is applied and again at exit).
// Schedules served over userfaultfd (reap, tiered, and --record, which serves everything on
// demand, one page per fault, read faults write-protected) run the same serve loop as
// --serve: the library replaces the image mapping with the schedule's base, registers it
// and hands the userfaultfd to us over a private socket with Firecracker's handshake; we
// install the eager pages, say "ready", and serve every other first touch from the parts.
#include "restore.hpp"

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/image.hpp"
#include "common/loadset.hpp"
#include "common/restore/source.hpp"
#include "common/tier.hpp"
#include "common/uffd/firecracker.hpp"

#include <poll.h>
#include <sys/syscall.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#ifndef SNAPKIT_PRELOAD_RELDIR  // set by tools/snap-restore/CMakeLists.txt from the install layout
#error "SNAPKIT_PRELOAD_RELDIR: the preload's directory relative to the installed snap-restore"
#endif

namespace snap::restore_tool {

namespace {

volatile sig_atomic_t g_child = 0;

void forward(int sig) {
    if (g_child > 0) ::kill(g_child, sig);
}

// The preload beside this executable: PREFIX/bin/../lib/snapkit/ once installed (the relative
// path comes from the install layout, SNAPKIT_PRELOAD_RELDIR), build/bin/../lib/ in the build
// tree; no search beyond these (a stale copy elsewhere would misread this build's plan).
std::string preload_path(const Options& opt) {
    if (!opt.preload.empty()) return std::filesystem::absolute(opt.preload).string();
    if (const char* e = std::getenv("SNAPRESTORE_PRELOAD")) return e;
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw_errno("readlink /proc/self/exe");
    buf[n] = 0;
    const std::filesystem::path dir = std::filesystem::path(buf).parent_path();
    const std::filesystem::path installed = (dir / SNAPKIT_PRELOAD_RELDIR / "libsnaprestore.so").lexically_normal();
    const std::filesystem::path build_tree = (dir.parent_path() / "lib" / "libsnaprestore.so").lexically_normal();
    for (const auto& p : {installed, build_tree})
        if (::access(p.c_str(), R_OK) == 0) return p.string();
    throw Error("libsnaprestore.so: preload library not found (looked for " + installed.string() + " and " +
                    build_tree.string() + ")",
                ExitCode::runtime, "reinstall snapkit, build the target snaprestore, or pass --preload PATH");
}

std::string image_path(const Options& opt, const placed::PlacedReader& r) {
    if (!opt.image.empty()) return std::filesystem::absolute(opt.image).string();
    const auto& meta = r.plan().meta;
    if (meta.contains("image") && meta["image"].is_string()) return meta["image"].get<std::string>();
    throw UsageError("--exec needs --image PATH: the image file the VMM maps (the placed artifact does not name it)");
}

nlohmann::json read_report(const std::string& path) {
    std::ifstream f(path);
    if (!f) return nullptr;
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

bool on_hugetlbfs(const std::string& path) { return hugetlbfs_page_bytes(path) != 0; }

std::string page_size_name(uint64_t bytes) {
    return bytes >= (1u << 20) ? std::to_string(bytes >> 20) + " MiB" : std::to_string(bytes >> 10) + " KiB";
}

// Guest memory on hugetlbfs (huge pages, e.g. QEMU's memory-backend-file on a hugetlbfs mount)
// stays huge only where the schedule maps hugetlbfs files over it, or serves it over
// userfaultfd into anonymous huge pages (the preload maps them MAP_HUGETLB, and snap-restore
// installs whole huge pages): anonymous memory laid by ops (anon and copy ops) and mappings of
// part files elsewhere are 4 KiB pages. Such a schedule is refused rather than run: it would
// succeed with the guest's memory quietly turned into small pages.
// A snapshot of smaller pages than the mount's (a 4 KiB artifact onto 2 MiB memory) is named as
// such: no placement of its parts could keep that memory huge (mappings of it over huge pages
// are refused by the kernel with a bare EINVAL).
void refuse_small_pages_over_hugetlbfs(const std::string& image, const restore::MappingPlan& plan,
                                       const placed::PlacedReader& r) {
    const uint64_t huge = hugetlbfs_page_bytes(image);
    if (!huge) return;
    std::string why;
    if (plan.demand && r.page_size() < huge)
        why = "its userfaultfd schedule serves the pages into anonymous memory";
    else if (plan.base == restore::Base::file && hugetlbfs_page_bytes(plan.files.at(size_t(plan.base_file)).path) != huge)
        why = "it maps its layout file " + plan.files.at(size_t(plan.base_file)).path + ", which is not on hugetlbfs";
    else if (plan.base == restore::Base::anon && !plan.demand)
        why = "it lays anonymous memory over the image";
    for (const auto& op : plan.ops) {
        if (!why.empty()) break;
        if (op.kind == restore::OpKind::anon) why = "it lays anonymous memory over the zero pages";
        else if (op.kind == restore::OpKind::copy) why = "it copies pages into anonymous memory";
        else if (op.file >= 0 && size_t(op.file) < plan.files.size() && !on_hugetlbfs(plan.files[size_t(op.file)].path))
            why = "it maps " + plan.files[size_t(op.file)].path + ", which is not on hugetlbfs";
    }
    if (why.empty()) return;
    if (r.page_size() < huge)
        throw UsageError(r.name() + " has " + page_size_name(r.page_size()) + " pages; the VMM's memory is " +
                             page_size_name(huge) + " huge pages (" + image + " is on hugetlbfs), and the " +
                             restore::strategy_name(plan.strategy) + " schedule lays its pages over it (" + why + ")",
                         "restore with --strategy vanilla (the image mapped as it is), onto an image outside hugetlbfs, "
                         "or from a snapshot split with " + page_size_name(huge) + " pages (snap-split --page-size " +
                             std::to_string(huge) + ")");
    throw UsageError(image + " is on hugetlbfs: the " + std::string(restore::strategy_name(plan.strategy)) +
                         " schedule would turn its huge pages into 4 KiB pages (" + why + ")",
                     "restore with --strategy vanilla (the image mapped as it is), or with --serve into huge-page "
                     "memory");
}

}  // namespace

int run_exec(const Options& opt, Context& ctx) {
    const auto& r = ctx.placed();
    const std::string image = image_path(opt, r);
    restore::MappingPlan plan = ctx.build_plan(opt, image);
    const bool record = !opt.record.empty();
    // A userfaultfd schedule reads nothing from the image (snapshots in a pool restore on a
    // host that never had it): when the image is absent, the VMM maps a placeholder of the
    // right size, made here (sparse, 0600) and removed when the VMM is done.
    // Guest memory on hugetlbfs (the image, or the placeholder that would be made there).
    if (!record) refuse_small_pages_over_hugetlbfs(image, plan, r);
    struct stat st{};
    std::string placeholder;
    if (::stat(image.c_str(), &st) != 0) {
        if (errno == ENOENT && !(plan.demand || record))
            throw Error(image + ": no such file (the " + std::string(restore::strategy_name(plan.strategy)) +
                            " schedule maps the image)",
                        ExitCode::runtime,
                        plan.strategy == restore::Strategy::tiered
                            ? "tiered serves every page from the parts when RO has an image-order layout (RO on dax: or "
                              "tmpfs) or is in a pool; or restore with --strategy reap, or --materialize the image first"
                            : "restore with --strategy reap (or tiered: every page from the parts), or --materialize the "
                              "image first");
        if (errno != ENOENT) throw_errno(image);
        if (!opt.dry_run) {
            file::create_placeholder(image, r.image().size_bytes);
            placeholder = image;
            if (::stat(image.c_str(), &st) != 0) throw_errno(image);
        }
        cli::info(image + " is absent: the VMM maps a placeholder; every page comes from the parts");
    } else {
        if (!S_ISREG(st.st_mode)) throw BadInput(image, "not a regular file");
        if (uint64_t(st.st_size) != r.image().size_bytes)
            throw BadInput(image, std::to_string(st.st_size) + " bytes, the placed artifact's image has " +
                                      std::to_string(r.image().size_bytes));
    }
    struct RemovePlaceholder {
        const std::string& path;
        ~RemovePlaceholder() {
            if (!path.empty()) ::unlink(path.c_str());
        }
    } remove_placeholder{placeholder};
    if (record) {
        // Recording: everything on demand, one page per fault, so that every first touch is seen.
        plan.base = restore::Base::anon;
        plan.base_file = restore::kNoFile;
        plan.demand = true;
        plan.eager.clear();
        plan.in_place.clear();
    }
    // The image's identity, when the schedule serves any page from it (a userfaultfd schedule
    // reads none): its fingerprint, hashed once and then remembered while the file is unchanged.
    std::string image_check = "not read";
    const auto image_t0 = std::chrono::steady_clock::now();
    if (!opt.no_verify && !opt.dry_run && plan.base == restore::Base::image && !plan.demand) {
        // The image fingerprint cache (one definition, common/image.hpp): looked up by the
        // file's stamp, hashed and remembered on a miss; --verify hashes now.
        auto fp = fingerprint_image_file(image, r.page_size(), opt.verify);
        if (fp.identity.fingerprint != r.image().fingerprint)
            throw BadInput(image, "fingerprint " + hash::to_hex(fp.identity.fingerprint) + ", the placed artifact was made from " +
                                      hash::to_hex(r.image().fingerprint));
        image_check = fingerprint_source_name(fp.source);
    }
    const auto image_check_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - image_t0).count();
    nlohmann::json j = {{"front_end", "exec"}, {"strategy", restore::strategy_name(plan.strategy)}, {"placed", opt.placed},
                        {"image", image}, {"plan", plan.to_json()}, {"mappings", plan.mappings},
                        {"image_placeholder", !placeholder.empty()}};
    j["verify"] = ctx.check_json();
    j["verify"]["image_verdict"] = opt.no_verify ? "skipped" : image_check;
    j["verify"]["image_check_ns"] = image_check_ns;
    if (opt.dry_run) {
        ctx.emit(opt, j, {std::string(restore::strategy_name(plan.strategy)) + ": " + std::to_string(plan.ops.size()) + " ops, " +
                          std::to_string(plan.mappings) + " mappings, " + std::to_string(plan.copy_bytes) + " bytes to copy"});
        return 0;
    }
    const std::string lib = preload_path(opt);
    if (::access(lib.c_str(), R_OK) != 0)
        throw Error(lib + ": preload library not found", ExitCode::runtime, "build it (target snaprestore) or pass --preload PATH");

    char tmpl[] = "/tmp/snap-restore-XXXXXX";
    if (!::mkdtemp(tmpl)) throw_errno("mkdtemp");
    const std::string dir = tmpl, plan_file = dir + "/plan", report_file = dir + "/report.json",
                      sock_file = dir + "/uffd.sock";
    struct Cleanup {
        std::string d;
        ~Cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(d, ec);
        }
    } cleanup{dir};
    // Userfaultfd schedules: the fault server's socket exists before the VMM can connect to it.
    std::unique_ptr<restore::PlacedSource> source;
    std::unique_ptr<uffd::UnixListener> listener;
    if (plan.demand) {
        source = std::make_unique<restore::PlacedSource>(r, ctx.pool_options());
        // The handler's own set-up: RW ready to install; RO too when it must be installed
        // (in a pool or compressed: no layout file maps it in place).
        if (plan.strategy == restore::Strategy::tiered) source->populate_rw(plan.base != restore::Base::file);
        listener = std::make_unique<uffd::UnixListener>(sock_file);
    }
    {
        auto bytes = restore::encode(plan);
        std::ofstream f(plan_file, std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        if (!f) throw_errno("cannot write " + plan_file);
    }
    std::string preload = lib;
    if (const char* old = std::getenv("LD_PRELOAD"); old && *old) preload += std::string(" ") + old;

    std::vector<char*> argv;
    for (const auto& a : opt.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    cli::info("running " + opt.command[0] + " with " + lib + " (" + std::to_string(plan.ops.size()) + " ops)");

    // The sizes of the files the VMM maps: one that shrinks under it (a part truncated while
    // mapped) kills it with SIGBUS, and the report then names the file.
    std::vector<std::pair<std::string, uint64_t>> mapped_sizes;
    for (const auto& f : plan.files) {
        struct stat fs{};
        if (!f.path.empty() && ::stat(f.path.c_str(), &fs) == 0 && S_ISREG(fs.st_mode))
            mapped_sizes.emplace_back(f.path, uint64_t(fs.st_size));
    }
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        // A VMM whose memory we serve must not outlive us (SIGKILL included); its own watcher
        // thread covers the rest once the socket is connected.
        if (plan.demand) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        // --json without -o: stdout is the report's, so the VMM writes its output to stderr
        // (never interleaved with the JSON; snapkit(7), JSON).
        if (opt.common.json && (opt.common.output.empty() || opt.common.output == "-") && ::dup2(2, 1) < 0) _exit(127);
        ::setenv("LD_PRELOAD", preload.c_str(), 1);
        ::setenv("SNAPRESTORE_PLAN", plan_file.c_str(), 1);
        ::setenv("SNAPRESTORE_REPORT", report_file.c_str(), 1);
        ::setenv("SNAPRESTORE_LIB", lib.c_str(), 1);
        if (plan.demand) ::setenv("SNAPRESTORE_UFFD", sock_file.c_str(), 1);
        if (record) ::setenv("SNAPRESTORE_RECORD", "1", 1);
        if (opt.overlap && plan.demand) ::setenv("SNAPRESTORE_OVERLAP", "1", 1);
        ::setenv("SNAPRESTORE_IMAGE", (std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino))).c_str(), 1);
        ::execvp(argv[0], argv.data());
        std::string line = "snap-restore: error: " + opt.command[0] + ": " + std::strerror(errno) + "\n";
        (void)!::write(2, line.data(), line.size());
        _exit(127);
    }
    g_child = pid;
    struct sigaction sa{};
    sa.sa_handler = forward;
    ::sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
    int status = 0;
    bool reaped = false;
    uffd::ServeResult served_result;
    bool served = false;
    uint64_t granule = 0;
    if (plan.demand) {
        try {
            // Wait for the VMM to map the image (it connects) or to exit without doing so.
            const int child_fd = int(::syscall(SYS_pidfd_open, pid, 0));
            for (;;) {
                pollfd p[2] = {{listener->fd(), POLLIN, 0}, {child_fd, POLLIN, 0}};
                int n = ::poll(p, child_fd >= 0 ? 2 : 1, child_fd >= 0 ? -1 : 100);
                if (n < 0 && errno != EINTR) {
                    if (child_fd >= 0) ::close(child_fd);
                    throw_errno("poll");
                }
                if (n > 0 && (p[0].revents & POLLIN)) break;
                pid_t w = ::waitpid(pid, &status, WNOHANG);
                if (w == pid) { reaped = true; break; }
            }
            if (child_fd >= 0) ::close(child_fd);
            if (!reaped) {
                auto peer = uffd::accept_firecracker(*listener, 1000, 5000, UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_THREAD_ID);
                if (peer.pid <= 0) peer.pid = pid;
                uffd::ServeOptions so;
                so.server.granule_bytes = granule = record ? r.page_size() : std::max<uint64_t>(ctx.granule_bytes(opt), r.page_size());
                so.server.use_zeropage = true;
                so.server.wake_installs = opt.overlap;  // the VMM may already touch what is being installed
                so.server.record = record;
                so.server.owner_pid = peer.pid;  // to count faults from KVM's async page-fault workers
                ctx.set_polling(opt, so.server);
                so.eager = restore::exec_installs(plan, !opt.overlap);  // the preload fills huge regions itself
                so.present = restore::exec_present(plan);
                so.send_ready = true;
                if (plan.strategy == restore::Strategy::reap)
                    // REAP reads its working-set file in one sequential pass and installs what it read.
                    so.install_eager = [&](uffd::FaultServer& fs, std::span<const uffd::PageRange> e) {
                        return source->install_hot_parts(fs, e);
                    };
                served_result = uffd::serve_peer(std::move(peer), *source, so);
                served = true;
            }
        } catch (...) {
            if (!reaped) {
                ::kill(pid, SIGKILL);
                while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                }
            }
            g_child = 0;
            throw;
        }
    }
    if (!reaped)
        while (::waitpid(pid, &status, 0) < 0)
            if (errno != EINTR) throw_errno("waitpid");
    g_child = 0;
    const double run_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

    nlohmann::json rep = read_report(report_file);
    j["vmm"] = {{"command", opt.command}, {"exit_status", code}, {"run_ms", run_ms}};
    j["preload"] = rep;
    const bool mapped = rep.is_object() && rep.value("image_mapped", false);
    if (mapped) {
        j["ready_ns"] = rep.value("ready_ns", uint64_t(0));
        j["copied_bytes"] = rep.value("copied_bytes", uint64_t(0));
        j["phases_ns"] = rep.value("phases_ns", nlohmann::json::object());
        j["added_mappings"] = rep.value("final_mappings", uint64_t(0)) - rep.value("initial_mappings", uint64_t(0));
    }
    uint64_t written = 0;
    const uffd::ServerStats& rec_stats = served_result.stats;
    LoadingSet recording = std::move(served_result.recording);
    if (served) {
        j["eager_bytes"] = served_result.eager_pages * 4096;  // the server counts 4 KiB pages
        j["stats"] = rec_stats.to_json();
        j["granule_bytes"] = granule;
        j["fault_spin_us"] = ctx.serve_spin_us(opt);
        j["decompressed_bytes"] = source->bytes_decompressed();
        j["loaded_bytes"] = source->bytes_loaded();
        j["pool"] = source->pool_json();
    }
    if (served && record) {
        recording.image = r.image();
        for (const auto& t : recording.touches) written += (t.access & kAccessWrite) ? 1 : 0;
        bool unchanged = false;
        if (code == 0 || !recording.touches.empty()) write_loadset(recording, opt.record, &unchanged);
        j["record"] = opt.record;
        j["record_unchanged"] = unchanged;
        j["recorded_pages"] = recording.touches.size();
        j["written_pages"] = written;
        j["write_protect"] = recording.knows_writes;
    }
    std::vector<std::string> lines = {
        std::string(restore::strategy_name(plan.strategy)) + ": " + std::to_string(plan.ops.size()) + " ops, " +
            std::to_string(plan.mappings) + " mappings planned, " + std::to_string(plan.copy_bytes) + " bytes to copy",
        opt.command[0] + " exited with code " + std::to_string(code) + " after " + std::to_string(int(run_ms)) + " ms"};
    if (mapped)
        lines.push_back("plan applied in " + std::to_string(rep["phases_ns"].value("total", uint64_t(0)) / 1000) + " us, " +
                        std::to_string(rep.value("copied_bytes", uint64_t(0))) + " bytes copied");
    if (served && !record)
        lines.push_back("served " + std::to_string(served_result.eager_pages) + " pages eagerly and " +
                        std::to_string(rec_stats.faults) + " faults on demand (" + std::to_string(rec_stats.pages_copied) +
                        " pages copied, " + std::to_string(rec_stats.pages_zeroed) + " zeroed)");
    if (served && record)
        lines.push_back("recorded " + std::to_string(recording.touches.size()) + " pages (" + std::to_string(written) +
                        " written) into " + opt.record + ": " + std::to_string(rec_stats.read_faults) + " read faults, " +
                        std::to_string(rec_stats.write_faults) + " write faults, " + std::to_string(rec_stats.wp_faults) +
                        " write-protect faults");
    ctx.emit(opt, j, lines);
    if (code != 0) {
        // The VMM's failure is ours to report as a runtime failure (exit 1): its own code
        // would read as usage (2), bad artifact (3) or missing capability (4).
        const std::string how = WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                                    : "exited with status " + std::to_string(code);
        if (rep.is_object() && rep.contains("error") && rep["error"].is_string())  // the preload stopped it: say why
            throw Error(opt.command[0] + " " + how + ": " + rep["error"].get<std::string>());
        for (const auto& [path, bytes] : mapped_sizes) {  // a file it mapped shrank under it: name it
            struct stat fs{};
            if (::stat(path.c_str(), &fs) == 0 && uint64_t(fs.st_size) < bytes)
                throw Error(opt.command[0] + " " + how + ": " + path + " was truncated while mapped (" +
                            std::to_string(fs.st_size) + " bytes, " + std::to_string(bytes) + " when the restore began)");
        }
        throw Error(opt.command[0] + " " + how);
    }
    if (!mapped)
        throw Error("the VMM never mapped " + image, ExitCode::runtime,
                    "check that the VMM's memory file is the --image given (same device and inode)");
    return 0;
}

}  // namespace snap::restore_tool

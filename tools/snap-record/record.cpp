// SPDX-License-Identifier: Apache-2.0
// snap-record's run(): start or attach to the target, let the method prepare, poll it on a
// timer and on RSS growth, and take the final scan while the target is held at its exit
// (PTRACE_EVENT_EXIT comes before the exiting thread drops its address space).
//
// Threads: every thread of the target is traced (PTRACE_O_TRACECLONE for new ones, a walk of
// /proc/PID/task for existing ones with --pid): exit_group() may come from any thread, the
// leader may leave early (pthread_exit) while others run on, and the address space lives
// until the last thread drops it. Every exit stop of a target thread gets a scan (cheap
// insurance: should a kernel let a SIGKILLed thread skip its stop, the caller of exit() still
// stops); the stop of the last running thread is the final one.
#include "record.hpp"

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/image.hpp"
#include "common/loadset.hpp"
#include "common/sys/proc.hpp"
#include "common/sys/ptrace.hpp"
#include "method.hpp"
#include "scan_clock.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

namespace snap::record {

namespace pt = sys::ptrace;

namespace {

constexpr unsigned kThreadOptions = pt::kTraceExit | pt::kTraceClone | pt::kTraceExec;
// Per-process methods (pagemap) follow forks too: a target that runs the program mapping the
// image as a child (a wrapper script) is recorded through that child, every process scanned
// at its exit. The others do not, so that recorders can be nested (each ptraces only its own
// child).
constexpr unsigned kForkOptions = pt::kTraceFork | pt::kTraceVfork;

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string join(const std::vector<std::string>& words) {
    std::string s;
    for (auto& w : words) s += (s.empty() ? "" : " ") + w;
    return s;
}

// Blocks SIGCHLD/SIGINT/SIGTERM/SIGHUP while recording and reads them from a signalfd, so
// that SIGINT means "stop cleanly" and SIGCHLD wakes the loop for ptrace stops.
class SignalCatcher {
public:
    SignalCatcher() {
        sigemptyset(&mask_);
        for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask_, s);
        if (sigprocmask(SIG_BLOCK, &mask_, &old_) < 0) throw_errno("sigprocmask");
        fd_ = signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd_ < 0) throw_errno("signalfd");
    }
    ~SignalCatcher() { restore(); }
    void restore() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
            sigprocmask(SIG_SETMASK, &old_, nullptr);
        }
    }
    int fd() const { return fd_; }
    const sigset_t& old_mask() const { return old_; }
    // The first terminating signal read, or 0.
    int drain() {
        signalfd_siginfo si{};
        int term = 0;
        while (::read(fd_, &si, sizeof si) == sizeof si)
            if (si.ssi_signo != SIGCHLD && !term) term = static_cast<int>(si.ssi_signo);
        return term;
    }

private:
    sigset_t mask_{}, old_{};
    int fd_ = -1;
};

class Recorder {
public:
    Recorder(const Options& opt, Method& method, Context& ctx, SignalCatcher& sig)
        : opt_(opt), method_(method), ctx_(ctx), sig_(sig) {}

    // -- CMD: fork a child that waits for a go byte, seize it, prepare, release it.
    void spawn() {
        int go[2], err[2];
        if (pipe2(go, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) throw_errno("pipe");
        std::vector<char*> argv;
        for (auto& w : opt_.command) argv.push_back(const_cast<char*>(w.c_str()));
        argv.push_back(nullptr);
        pid_t pid = fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            signal(SIGPIPE, SIG_DFL);
            for (int s : {SIGINT, SIGTERM, SIGHUP}) signal(s, SIG_DFL);
            sigprocmask(SIG_SETMASK, &sig_.old_mask(), nullptr);
            // --json without --report: stdout is the report's, so the command writes its
            // output to stderr (never interleaved with the JSON; snapkit(7), JSON).
            if (opt_.common.json && opt_.common.report.empty() && ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) _exit(127);
            ::close(go[1]);
            ::close(err[0]);
            char c;
            ssize_t n;
            while ((n = ::read(go[0], &c, 1)) < 0 && errno == EINTR) {
            }
            if (n != 1) _exit(127);
            execvp(argv[0], argv.data());
            int e = errno;
            ssize_t w = ::write(err[1], &e, sizeof e);
            (void)w;
            _exit(127);
        }
        ::close(go[0]);
        ::close(err[1]);
        go_fd_ = go[1];
        exec_err_fd_ = err[0];
        child_ = true;
        pid_ = pid;
        try {
            pt::seize(pid, trace_options() | pt::kExitKill);
        } catch (...) {
            ::kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            throw;
        }
        running_ = {pid};
        traced_ = {pid};
        expect_first_exec_ = true;
        ctx_.pid = ctx_.tid = pid;
    }

    void release() {
        if (::write(go_fd_, "g", 1) != 1) throw_errno("cannot start the command");
        ::close(go_fd_);
        go_fd_ = -1;
    }

    // --pid: seize every thread (repeat the walk until no new thread appears).
    void attach(pid_t pid) {
        if (pid <= 0 || !sys::process_exists(pid)) throw Error("no process " + std::to_string(pid));
        if (pid == getpid()) throw UsageError("--pid: cannot record snap-record itself");
        auto tgid = sys::read_status_field(pid, "Tgid");
        if (tgid && std::stol(*tgid) != pid)
            throw UsageError("--pid " + std::to_string(pid) + " is a thread of process " + *tgid +
                             ": give the process id");
        pid_ = pid;
        pt::seize(pid, trace_options());  // EPERM → exit 4 with a hint
        traced_.insert(pid);
        running_.insert(pid);
        for (bool added = true; added;) {
            added = false;
            for (pid_t tid : list_tasks(pid)) {
                if (traced_.count(tid)) continue;
                if (::ptrace(PTRACE_SEIZE, tid, nullptr,
                             reinterpret_cast<void*>(static_cast<unsigned long>(trace_options()))) < 0) {
                    // ESRCH: gone; EPERM: auto-attached already by TRACECLONE — both fine.
                    if (errno == EPERM) {
                        auto tracer = sys::read_status_field(tid, "TracerPid");
                        if (!tracer || std::stol(*tracer) != getpid()) continue;
                    } else {
                        continue;
                    }
                }
                traced_.insert(tid);
                running_.insert(tid);
                added = true;
            }
        }
        ctx_.pid = ctx_.tid = pid;
        attached_ = true;
    }

    void loop() {
        const uint64_t start = ctx_.start_ns;
        const uint64_t interval_ns = static_cast<uint64_t>(opt_.interval_ms * 1e6);
        const uint64_t deadline = opt_.duration_s > 0 ? start + static_cast<uint64_t>(opt_.duration_s * 1e9) : 0;
        const uint64_t rss_period_ns = 2'000'000;  // RSS is cheap (statm); 2 ms keeps triggers prompt
        uint64_t next_tick = interval_ns ? start + interval_ns : UINT64_MAX;
        uint64_t next_rss = opt_.rss_trigger_pages ? start + rss_period_ns : UINT64_MAX;
        rss_at_scan_ = sys::read_rss_pages(pid_).value_or(0);
        while (!target_gone_) {
            uint64_t now = now_ns();
            uint64_t wake = std::min({next_tick, next_rss, deadline ? deadline : UINT64_MAX});
            int timeout_ms = wake == UINT64_MAX ? 1000 : wake <= now ? 0 : static_cast<int>((wake - now + 999'999) / 1'000'000);
            pollfd fds[2] = {{sig_.fd(), POLLIN, 0}, {exec_err_fd_, POLLIN, 0}};
            int nfds = exec_err_fd_ >= 0 ? 2 : 1;
            if (::poll(fds, static_cast<nfds_t>(nfds), timeout_ms) < 0 && errno != EINTR) throw_errno("poll");
            if (int s = sig_.drain()) {
                stop_reason_ = signal_name(s);
                stop_signal_ = s;
                break;
            }
            if (nfds == 2 && fds[1].revents) check_exec();
            reap_events(false);
            if (target_gone_ || finished_) continue;
            now = now_ns();
            if (deadline && now >= deadline) {
                stop_reason_ = "duration";
                break;
            }
            bool scan = false;
            if (now >= next_tick) scan = true;
            if (now >= next_rss) {
                next_rss = now + rss_period_ns;
                if (auto rss = sys::read_rss_pages(pid_)) {
                    if (*rss < rss_at_scan_) rss_at_scan_ = *rss;
                    if (*rss >= rss_at_scan_ + opt_.rss_trigger_pages) {
                        scan = true;
                        ++rss_triggered_;
                    }
                }
            }
            if (scan) {
                poll_method();
                if (interval_ns) next_tick = now_ns() + interval_ns;
            }
        }
        end_ns_ = now_ns();
        if (stop_reason_.empty()) stop_reason_ = "exit";
    }

    // After the loop: the final look if the exit stop did not give one, then let go of the
    // target (--pid: detach; -- CMD: terminate it).
    void conclude() {
        if (!finished_) {
            ctx_.target_alive = !target_gone_ && !running_.empty();
            poll_descendants();
            if (ctx_.target_alive) ctx_.tid = live_tid();
            method_.finish(ctx_);
            finished_ = true;
            final_scan_ = ctx_.target_alive ? "running" : exit_scans_ ? "thread-exit-stop" : "none";
        }
        if (target_gone_) return;
        if (attached_) {
            detach_all();
        } else {
            ::kill(pid_, SIGTERM);
            uint64_t give_up = now_ns() + 5'000'000'000ull;
            bool killed = false;
            while (!target_gone_) {
                if (!killed && now_ns() > give_up) {
                    ::kill(pid_, SIGKILL);
                    killed = true;
                }
                pollfd fd{sig_.fd(), POLLIN, 0};
                ::poll(&fd, 1, 50);
                sig_.drain();
                reap_events(false);
            }
        }
    }

    nlohmann::json meta() const {
        nlohmann::json m;
        if (attached_) {
            m["pid"] = pid_;
            m["target"] = join(cmdline_at_start_);
        } else {
            m["command"] = opt_.command;
        }
        m["interval_ms"] = opt_.interval_ms;
        m["rss_trigger_pages"] = opt_.rss_trigger_pages;
        m["rss_triggered_scans"] = rss_triggered_;
        m["duration_ms"] = duration_ms();
        m["stop"] = stop_reason_;
        m["final_scan"] = final_scan_;
        if (exit_) {
            m["exit_status"] = pt::shell_status(*exit_);
            if (exit_->kind == pt::WaitEvent::killed) m["exit_signal"] = signal_name(exit_->code);
        } else {
            m["exit_status"] = nullptr;
        }
        return m;
    }

    std::vector<std::string> limitations() const {
        std::vector<std::string> out;
        if (final_scan_ == "none")
            out.push_back("no final scan: the target vanished without an exit stop (killed by SIGKILL?); "
                          "touches after the last scan are lost");
        if (attached_)
            out.push_back("attached to a running process: what it touched before the attach cannot be "
                          "told from what it touched after (it shows in the first scan, or not at all)");
        if (!attached_ && method_.per_process())
            out.push_back("processes the target forks are scanned in turn and at their exit; a process that "
                          "is not a descendant (e.g. started by a daemon) is not seen");
        return out;
    }

    double duration_ms() const { return static_cast<double>(end_ns_ - ctx_.start_ns) / 1e6; }
    const std::optional<pt::WaitEvent>& exit_status() const { return exit_; }
    const std::string& stop_reason() const { return stop_reason_; }
    int stop_signal() const { return stop_signal_; }  // the signal that stopped recording, or 0
    void remember_cmdline() { cmdline_at_start_ = sys::read_cmdline(pid_); }

private:
    static std::vector<pid_t> list_tasks(pid_t pid) {
        std::vector<pid_t> out;
        std::string dir = "/proc/" + std::to_string(pid) + "/task";
        DIR* d = opendir(dir.c_str());
        if (!d) return out;
        while (dirent* e = readdir(d))
            if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(static_cast<pid_t>(std::atol(e->d_name)));
        closedir(d);
        return out;
    }

    unsigned trace_options() const { return kThreadOptions | (method_.per_process() ? kForkOptions : 0u); }

    pid_t live_tid() const {
        if (running_.count(pid_) || running_.empty()) return pid_;
        return *running_.begin();
    }

    void poll_method() {
        ctx_.tid = live_tid();
        method_.poll(ctx_);
        poll_descendants();
        rss_at_scan_ = sys::read_rss_pages(pid_).value_or(rss_at_scan_);
    }

    // Per-process methods look at every live descendant process too, one after the other.
    void poll_descendants() {
        if (!method_.per_process()) return;
        for (auto& [tgid, tids] : descendants_) {
            if (tids.empty()) continue;
            ctx_.tid = *tids.begin();
            method_.poll(ctx_);
        }
        ctx_.tid = live_tid();
    }

    void check_exec() {
        int e = 0;
        ssize_t n = ::read(exec_err_fd_, &e, sizeof e);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        ::close(exec_err_fd_);
        exec_err_fd_ = -1;
        if (n == static_cast<ssize_t>(sizeof e)) {
            ::kill(pid_, SIGKILL);
            while (!target_gone_) reap_events(true);
            throw Error("cannot run '" + opt_.command.front() + "': " + std::strerror(e));
        }
    }

    bool is_target_thread(pid_t tid) {
        auto tgid = sys::read_status_field(tid, "Tgid");
        return tgid && std::stol(*tgid) == pid_;
    }

    void learn_thread(pid_t tid) {
        if (traced_.count(tid)) return;
        traced_.insert(tid);
        if (is_target_thread(tid)) {
            running_.insert(tid);
            return;
        }
        foreign_.insert(tid);
        if (auto tgid = sys::read_status_field(tid, "Tgid")) descendants_[static_cast<pid_t>(std::stol(*tgid))].insert(tid);
    }

    void forget_descendant_thread(pid_t tid) {
        for (auto it = descendants_.begin(); it != descendants_.end(); ++it)
            if (it->second.erase(tid)) {
                if (it->second.empty()) descendants_.erase(it);
                return;
            }
    }

    void reap_events(bool block) {
        for (;;) {
            int status = 0;
            pid_t tid = waitpid(-1, &status, __WALL | (block ? 0 : WNOHANG));
            if (tid < 0) {
                if (errno == EINTR) continue;
                if (errno == ECHILD) target_gone_ = true;  // nothing left to wait for
                return;
            }
            if (tid == 0) return;
            handle(tid, pt::decode_wait_status(status));
            if (block) return;
        }
    }

    void handle(pid_t tid, const pt::WaitEvent& ev) {
        using K = pt::WaitEvent;
        switch (ev.kind) {
        case K::exited:
        case K::killed:
            running_.erase(tid);
            traced_.erase(tid);
            foreign_.erase(tid);
            forget_descendant_thread(tid);
            if (tid == pid_) {
                exit_ = ev;
                target_gone_ = true;
            }
            return;
        case K::signal_stop:
            pt::resume(tid, ev.code);  // re-deliver
            return;
        case K::group_stop:
            pt::listen(tid);
            return;
        case K::event_stop:
            break;
        }
        switch (ev.event) {
        case pt::kClone:
        case pt::kFork:
        case pt::kVfork:
            learn_thread(static_cast<pid_t>(pt::event_message(tid)));
            break;
        case pt::kStop:
            learn_thread(tid);  // first stop of an auto-attached thread (maybe before kClone)
            break;
        case pt::kExec:
            if (expect_first_exec_ && tid == pid_) {
                expect_first_exec_ = false;
            } else if (!foreign_.count(tid)) {
                ++ctx_.execs;
                running_ = {pid_};  // de_thread left only the exec'ing thread, now the leader
            } else {
                // A descendant exec'ed: only the exec'ing thread is left, now its leader.
                forget_descendant_thread(tid);
                foreign_.insert(tid);
                traced_.insert(tid);
                if (auto tgid = sys::read_status_field(tid, "Tgid"))
                    descendants_[static_cast<pid_t>(std::stol(*tgid))] = {tid};
            }
            break;
        case pt::kExit:
            if (foreign_.count(tid)) {
                // The last thread of a descendant process: scan it while its memory exists.
                for (auto it = descendants_.begin(); it != descendants_.end(); ++it) {
                    if (!it->second.erase(tid)) continue;
                    if (it->second.empty()) {
                        descendants_.erase(it);
                        if (!finished_ && method_.per_process()) {
                            ctx_.tid = tid;
                            ctx_.target_alive = true;
                            method_.poll(ctx_);
                            ++exit_scans_;
                            ctx_.tid = live_tid();
                        }
                    }
                    break;
                }
            } else if (running_.count(tid)) {
                running_.erase(tid);
                if (!finished_) {
                    // The exiting thread still holds the address space: scan it now.
                    ctx_.tid = tid;
                    ctx_.target_alive = true;
                    if (running_.empty()) {
                        poll_descendants();  // processes that outlive the target: one last look
                        ctx_.tid = tid;
                        method_.finish(ctx_);
                        finished_ = true;
                        final_scan_ = "exit-stop";
                        end_ns_ = now_ns();
                    } else {
                        method_.poll(ctx_);
                        ++exit_scans_;
                    }
                }
            }
            break;
        default:
            break;
        }
        pt::resume(tid, 0);
    }

    void detach_all() {
        for (pid_t tid : traced_) pt::interrupt(tid);
        uint64_t give_up = now_ns() + 5'000'000'000ull;
        while (!traced_.empty() && now_ns() < give_up) {
            int status = 0;
            pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);
            if (tid < 0) break;
            if (tid == 0) {
                usleep(1000);
                continue;
            }
            auto ev = pt::decode_wait_status(status);
            if (ev.kind == pt::WaitEvent::exited || ev.kind == pt::WaitEvent::killed) {
                if (tid == pid_) exit_ = ev;
            } else {
                pt::detach(tid, ev.kind == pt::WaitEvent::signal_stop ? ev.code : 0);
            }
            traced_.erase(tid);
        }
    }

    const Options& opt_;
    Method& method_;
    Context& ctx_;
    SignalCatcher& sig_;
    pid_t pid_ = 0;
    bool child_ = false, attached_ = false;
    int go_fd_ = -1, exec_err_fd_ = -1;
    bool expect_first_exec_ = false;
    std::set<pid_t> running_;  // target threads not yet at their exit stop
    std::set<pid_t> traced_;   // every thread we trace
    std::set<pid_t> foreign_;  // traced clones that are not threads of the target
    std::map<pid_t, std::set<pid_t>> descendants_;  // descendant process → its threads not yet at their exit stop
    bool target_gone_ = false, finished_ = false;
    std::optional<pt::WaitEvent> exit_;
    std::string stop_reason_, final_scan_ = "none";
    int stop_signal_ = 0;
    uint64_t end_ns_ = 0, rss_at_scan_ = 0, rss_triggered_ = 0, exit_scans_ = 0;
    std::vector<std::string> cmdline_at_start_;
};

void check_options(const Options& opt) {
    if (opt.common.output.empty())
        throw UsageError("no output given", "give -o FILE (or -o - for stdout)");
    if (opt.common.json && opt.common.output == "-" && opt.common.report.empty())
        throw UsageError("--json and -o - both want stdout", "write the loading set to a file with -o FILE");
    if (opt.pid && !opt.command.empty()) throw UsageError("give either --pid PID or -- CMD ARGS…, not both");
    if (!opt.pid && opt.command.empty()) throw UsageError("nothing to record", "give -- CMD ARGS… or --pid PID");
    if (!(opt.interval_ms >= 0) || !std::isfinite(opt.interval_ms)) throw UsageError("--interval must be >= 0");
    if (!(opt.duration_s >= 0) || !std::isfinite(opt.duration_s)) throw UsageError("--duration must be >= 0");
    if (opt.page_size < 4096 || (opt.page_size & (opt.page_size - 1)))
        throw UsageError("--page-size must be a power of two >= 4096");
    if (opt.common.output != "-") {
        // Fail before the target runs, not after a long recording.
        auto slash = opt.common.output.rfind('/');
        std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : opt.common.output.substr(0, slash);
        if (::access(dir.c_str(), W_OK | X_OK) < 0) throw_errno("cannot write " + opt.common.output + " (" + dir + ")");
    }
}

}  // namespace

int run(const Options& opt) {
    check_options(opt);
    auto method = make_method(opt.method, opt);

    Context ctx;
    ctx.options = &opt;
    ctx.image_path = opt.mem;
    ctx.page_size = opt.page_size;
    {
        struct stat st {};
        if (::stat(opt.mem.c_str(), &st) < 0) throw_errno(opt.mem);
        if (!S_ISREG(st.st_mode)) throw BadInput(opt.mem, "not a regular file");
        if (st.st_size == 0) throw BadInput(opt.mem, "image is empty");
        if (static_cast<uint64_t>(st.st_size) % opt.page_size)
            throw BadInput(opt.mem, "image size " + std::to_string(st.st_size) +
                                        " is not a multiple of the page size " + std::to_string(opt.page_size));
        ctx.image_dev = st.st_dev;
        ctx.image_ino = st.st_ino;
        ctx.image_bytes = static_cast<uint64_t>(st.st_size);
    }

    SignalCatcher signals;
    Recorder rec(opt, *method, ctx, signals);
    if (opt.pid) {
        rec.attach(opt.pid);
        rec.remember_cmdline();
    } else {
        rec.spawn();
    }
    ctx.start_ns = now_ns();
    method->prepare(ctx);
    if (!opt.pid) rec.release();
    rec.loop();
    rec.conclude();
    signals.restore();  // from here a SIGINT aborts (and removes the temporary output)

    // A loading set of a run that failed or was cut short describes a restore nobody wants
    // to repeat: refuse it (exit 1, the status in the message and in --json) unless asked.
    // Not failures: --duration ending the run (the command's SIGTERM is ours), and SIGINT/
    // SIGTERM ending an attached --pid recording (its documented stop; the target lives on).
    const auto& ex = rec.exit_status();
    std::string failure;
    int reraise = 0;
    if (rec.stop_signal() && !opt.pid) {
        failure = "interrupted by " + rec.stop_reason() + " before the command finished";
        reraise = rec.stop_signal();
    } else if (ex && pt::shell_status(*ex) != 0 && rec.stop_reason() != "duration") {
        failure = std::string(opt.pid ? "the process" : "the command") +
                  (ex->kind == pt::WaitEvent::killed ? " was killed by " + signal_name(ex->code)
                                                     : " exited with status " + std::to_string(ex->code));
    }
    if (!failure.empty() && !opt.keep_on_failure) {
        nlohmann::json d = {{"stop", rec.stop_reason()},
                            {"exit_status", ex ? nlohmann::json(pt::shell_status(*ex)) : nlohmann::json(nullptr)}};
        if (ex && ex->kind == pt::WaitEvent::killed) d["exit_signal"] = signal_name(ex->code);
        throw cli::DetailedError(failure + ": no loading set written", d, "--keep-on-failure writes it anyway", reraise);
    }

    LoadingSet ls;
    method->result(ctx, ls);
    // Last: unless remembered for the image's unchanged stat, it reads the whole image.
    const ImageFingerprint fp = fingerprint_image_file(opt.mem, opt.page_size, opt.rehash);
    ls.image = fp.identity;
    nlohmann::json lim = ls.meta.contains("limitations") ? ls.meta["limitations"] : nlohmann::json::array();
    for (auto& l : rec.limitations()) lim.push_back(l);
    const nlohmann::json rec_meta = rec.meta();  // named: items() of a temporary dangles
    for (auto& [k, v] : rec_meta.items()) ls.meta[k] = v;
    ls.meta["method"] = ls.method;
    ls.meta["limitations"] = lim;
    ls.normalize();
    bool unchanged = false;
    write_loadset(ls, opt.common.output, &unchanged);

    if (!failure.empty()) cli::warn(failure + " (recorded anyway: --keep-on-failure)");
    cli::info("recorded " + std::to_string(ls.touches.size()) + " pages (" + std::to_string(ls.written_pages()) +
              " written) in " + std::to_string(ls.meta.value("scans", 0u)) + " scans");
    if (opt.common.json || !opt.common.report.empty()) {
        nlohmann::json j;
        j["method"] = ls.method;
        j["touched_pages"] = ls.touches.size();
        j["read_pages"] = ls.read_pages();
        j["written_pages"] = ls.knows_writes ? nlohmann::json(ls.written_pages()) : nlohmann::json(nullptr);
        j["scans"] = ls.meta.value("scans", 0u);
        j["duration_ms"] = rec.duration_ms();
        j["image_fingerprint"] = hash::to_hex(ls.image.fingerprint);
        j["fingerprint_source"] = fingerprint_source_name(fp.source);
        j["output"] = opt.common.output;
        j["output_unchanged"] = unchanged;
        j["stop"] = rec.stop_reason();
        j["final_scan"] = ls.meta["final_scan"];
        j["exit_status"] = ls.meta["exit_status"];
        if (ls.meta.contains("exit_signal")) j["exit_signal"] = ls.meta["exit_signal"];
        // Method-specific facts worth seeing without snap-stat.
        for (const char* k : {"scan_total_ns", "image_mappings", "scanner", "cache_dropped", "resident_at_start_pages",
                              "read_ahead_bytes", "lost_events", "bpf"})
            if (ls.meta.contains(k)) j[k] = ls.meta[k];
        j["limitations"] = lim;
        cli::print_report(opt.common.report, j);
    }
    return 0;
}

}  // namespace snap::record

// SPDX-License-Identifier: Apache-2.0
// Firecracker's UFFD backend protocol, handler side (see firecracker.hpp).
#include "firecracker.hpp"
#include "wire.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace snap::uffd {

namespace {

uint64_t field(const nlohmann::json& e, size_t i, const char* name, bool required = true) {
    auto it = e.find(name);
    if (it == e.end()) {
        if (required) throw ProtocolError("region " + std::to_string(i) + ": missing \"" + name + "\"");
        return 0;
    }
    if (!it->is_number_unsigned()) {
        if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<uint64_t>();
        throw ProtocolError("region " + std::to_string(i) + ": \"" + name + "\" is not a non-negative integer");
    }
    return it->get<uint64_t>();
}

bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

// Wait for fd to become readable. false on timeout.
bool wait_readable(int fd, int timeout_ms) {
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int n = ::poll(&p, 1, timeout_ms);
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) throw_errno("poll");
    }
}

// The VMM to kill from a signal handler, and the handlers we displaced.
std::atomic<pid_t> g_peer{0};
struct sigaction g_old[3];
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void kill_peer_and_chain(int sig) {
    pid_t p = g_peer.load();
    if (p > 0) ::kill(p, SIGKILL);
    for (int i = 0; i < 3; ++i) {
        if (kSignals[i] != sig) continue;
        const struct sigaction& old = g_old[i];
        if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
            old.sa_handler(sig);  // e.g. the temp-file cleanup, which re-raises
            return;
        }
        if (old.sa_handler == SIG_IGN) return;
    }
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

// While alive: a signal that would end us kills the peer first.
class PeerGuard {
public:
    PeerGuard(pid_t pid, bool active) : active_(active && pid > 0) {
        if (!active_) return;
        g_peer.store(pid);
        struct sigaction sa {};
        sa.sa_handler = kill_peer_and_chain;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
    }
    ~PeerGuard() {
        if (!active_) return;
        for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
        g_peer.store(0);
    }
    PeerGuard(const PeerGuard&) = delete;
    PeerGuard& operator=(const PeerGuard&) = delete;

private:
    bool active_;
};

}  // namespace

std::vector<Region> parse_firecracker_regions(std::string_view text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers out of range (1e400)
        throw ProtocolError(std::string("not JSON: ") + e.what());
    }
    if (!j.is_array()) throw ProtocolError("expected a JSON array of regions");
    if (j.empty()) throw ProtocolError("no regions");
    std::vector<Region> out;
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        if (!e.is_object()) throw ProtocolError("region " + std::to_string(i) + ": not an object");
        Region r;
        r.base = field(e, i, "base_host_virt_addr");
        r.size_bytes = field(e, i, "size");
        r.offset = field(e, i, "offset");
        bool has_new = e.contains("page_size"), has_old = e.contains("page_size_kib");
        if (!has_new && !has_old) throw ProtocolError("region " + std::to_string(i) + ": missing \"page_size\"");
        uint64_t ps = has_new ? field(e, i, "page_size") : field(e, i, "page_size_kib");
        // Firecracker's page_size_kib carried bytes despite its name; a value below 4096 that
        // is a power of two can only have meant KiB (4, 2048), so read it that way.
        if (ps < 4096 && is_pow2(ps) && ps * 1024 >= 4096) ps *= 1024;
        if (!is_pow2(ps) || ps < 4096)
            throw ProtocolError("region " + std::to_string(i) + ": page size " + std::to_string(ps) + " is not a power of two >= 4096");
        r.page_size = ps;
        out.push_back(r);
    }
    try {
        RegionMap check(out);
    } catch (const ProtocolError&) {
        throw;
    } catch (const Error& e) {
        throw ProtocolError(e.what());
    }
    return out;
}

std::string firecracker_regions_json(const std::vector<Region>& regions, bool legacy_field) {
    nlohmann::json j = nlohmann::json::array();
    for (const Region& r : regions)
        j.push_back({{"base_host_virt_addr", r.base},
                     {"size", r.size_bytes},
                     {"offset", r.offset},
                     {legacy_field ? "page_size_kib" : "page_size", r.page_size}});
    return j.dump();
}

UnixListener::UnixListener(const std::string& path, int backlog, bool shared) : path_(path) {
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        throw UsageError("socket path '" + path + "' is empty or longer than " + std::to_string(sizeof addr.sun_path - 1) + " bytes");
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw Error(path + ": exists and is not a socket");
        ::unlink(path.c_str());  // a stale socket from an earlier run
    }
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw_errno("socket");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // The socket hands out guest memory: only its owner may connect (0600 whatever the umask),
    // or, shared, anyone may connect and each peer's uid is checked on accept.
    const mode_t old_umask = ::umask(shared ? 0111 : 0177);
    const int bound = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old_umask);
    if (bound != 0 || ::listen(fd_, backlog) != 0) {
        int err = errno;
        ::close(fd_);
        fd_ = -1;
        throw_errno("listen on " + path, err);
    }
}

UnixListener::~UnixListener() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
}

FirecrackerPeer accept_firecracker(UnixListener& listener, int accept_timeout_ms, int message_timeout_ms,
                                   uint64_t assumed_features, const std::vector<uid_t>& allowed_uids) {
    if (!wait_readable(listener.fd(), accept_timeout_ms))
        throw ProtocolError("no connection on " + listener.path() + " within " + std::to_string(accept_timeout_ms) + " ms");
    int conn = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) throw_errno("accept on " + listener.path());
    FirecrackerPeer peer;
    peer.conn = SocketFd(conn);  // closed with the peer (or on a throw below)
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        peer.pid = cred.pid;
        peer.uid = cred.uid;
    }
    // The 0600 socket keeps others out, except root: only our own uid, or one allowed on purpose.
    if (peer.uid != ::geteuid() && std::find(allowed_uids.begin(), allowed_uids.end(), peer.uid) == allowed_uids.end()) {
        if (peer.pid > 0) ::kill(peer.pid, SIGKILL);
        throw ProtocolError("peer uid " + std::to_string(peer.uid) + " is not this server's (" + std::to_string(::geteuid()) + ")" +
                            (allowed_uids.empty() ? "" : " nor one allowed with --allow-uid"));
    }
    // A rejected handshake (any throw below) kills the peer: a VMM that sent its userfaultfd
    // waits for faults to be served and would hang otherwise.
    try {
        // The message may arrive in pieces (a stream socket); the descriptor rides on the first.
        int uffd = -1;
        std::string text;
        for (;;) {
            if (!wait_readable(conn, message_timeout_ms)) {
                if (uffd >= 0) ::close(uffd);
                throw ProtocolError("no complete message within " + std::to_string(message_timeout_ms) + " ms");
            }
            long n = wire::receive(conn, &text, &uffd, 16384);
            if (n < 0) {
                if (uffd >= 0) ::close(uffd);
                throw_errno("recvmsg", int(-n));
            }
            bool complete = nlohmann::json::accept(text);
            if (complete || n == 0) {
                if (!complete) {
                    if (uffd >= 0) ::close(uffd);
                    throw ProtocolError(text.empty() ? "connection closed without a message"
                                                     : "connection closed inside the message");
                }
                break;
            }
            if (text.size() > (1u << 20)) {
                if (uffd >= 0) ::close(uffd);
                throw ProtocolError("message longer than 1 MiB");
            }
        }
        if (uffd < 0) throw ProtocolError("no userfaultfd attached to the message (SCM_RIGHTS)");
        {  // the descriptor must be a userfaultfd: anything else (a file, /dev/zero) is refused
            char link[64] = {};
            const std::string fdpath = "/proc/self/fd/" + std::to_string(uffd);
            const ssize_t n = ::readlink(fdpath.c_str(), link, sizeof link - 1);
            if (n <= 0 || std::string(link, size_t(n)) != "anon_inode:[userfaultfd]") {
                ::close(uffd);
                if (peer.pid > 0) ::kill(peer.pid, SIGKILL);
                throw ProtocolError("the descriptor sent is not a userfaultfd (" + (n > 0 ? std::string(link, size_t(n)) : "?") + ")");
            }
        }
        peer.uffd = Userfaultfd::adopt(uffd, assumed_features);
        peer.regions = parse_firecracker_regions(text);
        peer.message = std::move(text);
    } catch (...) {
        if (peer.pid > 0 && peer.pid != ::getpid()) ::kill(peer.pid, SIGKILL);
        throw;
    }
    return peer;
}

nlohmann::json ServeResult::to_json() const {
    nlohmann::json rs = nlohmann::json::array();
    for (const Region& r : regions) {
        char b[24];
        std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(r.base));
        rs.push_back({{"base_host_virt_addr", b}, {"size_bytes", r.size_bytes}, {"offset_bytes", r.offset}, {"page_size_bytes", r.page_size}});
    }
    nlohmann::json j = {{"regions", rs}, {"peer_pid", peer_pid}, {"peer_exited", peer_exited},
                        {"eager_bytes", eager_pages * 4096}, {"stats", stats.to_json()}};
    if (!recording.method.empty()) j["recorded_pages"] = recording.touches.size();
    return j;
}

SocketFd::~SocketFd() {
    if (fd_ >= 0) ::close(fd_);
}

SocketFd& SocketFd::operator=(SocketFd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

namespace {
// The guardian: a child that holds one end of a socket pair and a pidfd of the peer, and
// nothing else. The other end is only ours: when it closes without the "done" byte before it
// (this process died, however), the peer is killed. Returns the guardian's pid, and
// the write end in *pipe_out (-1, 0 when it could not be started: serving goes on unguarded).
pid_t start_guardian(pid_t peer, int* pipe_out) {
    *pipe_out = -1;
    if (peer <= 0) return 0;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, peer, 0));
    if (pidfd < 0) return 0;
    int p[2];  // a socket pair, not a pipe: writing to a guardian that already left must not raise SIGPIPE
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0) {
        ::close(pidfd);
        return 0;
    }
    const pid_t g = ::fork();
    if (g < 0) {
        ::close(p[0]);
        ::close(p[1]);
        ::close(pidfd);
        return 0;
    }
    if (g == 0) {
        // Hold nothing of the server's (the socket, the userfaultfd, part files).
        for (int fd = 0; fd < 4096; ++fd)
            if (fd != p[0] && fd != pidfd) ::close(fd);
        ::prctl(PR_SET_NAME, "snap-guardian");
        pollfd w[2] = {{p[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
        for (;;) {
            if (::poll(w, 2, -1) < 0) {
                if (errno == EINTR) continue;
                _exit(1);
            }
            if (w[1].revents) _exit(0);  // the peer is gone: nothing to guard
            if (w[0].revents) {
                char b = 0;
                const ssize_t n = ::read(p[0], &b, 1);
                if (n < 0 && errno == EINTR) continue;
                if (n == 1 && b == 'D') _exit(0);  // the server finished: stand down
                ::kill(peer, SIGKILL);             // the server died: the peer must not hang
                _exit(0);
            }
        }
    }
    ::close(p[0]);
    ::close(pidfd);
    *pipe_out = p[1];
    return g;
}

void stop_guardian(pid_t g, int pipe_w) {
    if (g <= 0) return;
    const char d = 'D';
    (void)!::send(pipe_w, &d, 1, MSG_NOSIGNAL);
    ::close(pipe_w);
    while (::waitpid(g, nullptr, 0) < 0 && errno == EINTR) {
    }
}
}  // namespace

ServeResult serve_peer(FirecrackerPeer peer, PageSource& source, const ServeOptions& opt) {
    ServeResult result;
    result.regions = peer.regions;
    result.peer_pid = peer.pid;
    PeerGuard guard(peer.pid, opt.kill_peer_on_error);
    // Regions are checked before anything is served: a region past the image would be served
    // as zeros that no snapshot holds. A rejected peer is killed, not left to hang on a fault.
    for (const Region& r : peer.regions)
        if (r.offset > source.size_bytes() || r.size_bytes > source.size_bytes() - r.offset) {
            if (opt.kill_peer_on_error && peer.pid > 0) ::kill(peer.pid, SIGKILL);
            throw ProtocolError("region at image offset " + std::to_string(r.offset) + " of " + std::to_string(r.size_bytes) +
                                " bytes lies outside the " + std::to_string(source.size_bytes()) + "-byte image");
        }
    int guard_pipe = -1;
    const pid_t guardian = opt.guardian ? start_guardian(peer.pid, &guard_pipe) : 0;
    struct GuardianStop {
        pid_t g;
        int w;
        ~GuardianStop() { stop_guardian(g, w); }  // normal end and exceptions alike: we are alive
    } guardian_stop{guardian, guard_pipe};
    try {
        int pidfd = peer.pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0)) : -1;
        struct Closer {
            int fd;
            ~Closer() { if (fd >= 0) ::close(fd); }
        } pidfd_closer{pidfd};
        ServerOptions so = opt.server;
        if (so.record && so.owner_pid == 0) so.owner_pid = peer.pid;
        FaultServer server(std::move(peer.uffd), peer.regions, source, so);
        if (opt.server.record && opt.server.record_writes_wp) server.enable_wp();
        if (!opt.present.empty()) server.mark_present(opt.present);
        if (opt.on_connected) {
            FirecrackerPeer view;
            view.regions = peer.regions;
            view.pid = peer.pid;
            view.uid = peer.uid;
            view.message = peer.message;
            opt.on_connected(view, server);
        }
        if (!opt.eager.empty())
            result.eager_pages = opt.install_eager ? opt.install_eager(server, opt.eager) : server.install(opt.eager);
        if (opt.send_ready) {
            int rc = wire::send_ready(peer.conn.fd());
            if (rc != 0 && rc != -EPIPE) throw_errno("send ready to the VMM", -rc);
        }
        for (;;) {
            std::array<int, 1> extra{pidfd};
            std::span<const int> fds = pidfd >= 0 ? std::span<const int>(extra) : std::span<const int>();
            int why = server.serve(fds, opt.stop, pidfd >= 0 ? -1 : 500);
            if (why == 0) { result.peer_exited = true; break; }  // the VMM is gone
            if (why == -1) break;                                 // asked to stop
            if (pidfd < 0 && peer.pid > 0 && ::kill(peer.pid, 0) != 0 && errno == ESRCH) {
                result.peer_exited = true;
                break;
            }
        }
        result.stats = server.stats();
        if (opt.server.record) {
            result.recording = server.loading_set({source.size_bytes(), source.page_size(), 0});
        }
    } catch (...) {
        if (opt.kill_peer_on_error && peer.pid > 0) ::kill(peer.pid, SIGKILL);
        throw;
    }
    return result;
}

ServeResult serve_firecracker(const std::string& socket_path, PageSource& source, const ServeOptions& opt) {
    FirecrackerPeer peer;
    {
        UnixListener listener(socket_path, 1, !opt.allowed_uids.empty());
        if (opt.on_listening) opt.on_listening(socket_path);
        peer = accept_firecracker(listener, opt.accept_timeout_ms, opt.message_timeout_ms, opt.assumed_features,
                                  opt.allowed_uids);
    }  // one VMM per server: the socket is gone once it is connected (a second client is refused, not queued)
    return serve_peer(std::move(peer), source, opt);
}

}  // namespace snap::uffd

// SPDX-License-Identifier: Apache-2.0
// Firecracker's UFFD memory backend, handler side, as Firecracker's
// docs/snapshotting/handling-page-faults-on-snapshot-resume.md describes it:
//  1. the handler binds and listens on a unix socket;
//  2. Firecracker (restoring with mem_backend {backend_type: Uffd, backend_path: SOCKET})
//     creates a userfaultfd, registers guest memory MISSING, connects, and sends ONE message:
//     a JSON array of {"base_host_virt_addr", "size", "offset", "page_size"} (older
//     releases spell the last "page_size_kib"; it holds bytes all the same) with the
//     userfaultfd attached as SCM_RIGHTS; nothing else is ever said on the socket;
//  3. the handler serves faults until Firecracker exits. If the handler must die, it kills
//     Firecracker (pid from SO_PEERCRED), else the VM hangs on the next fault.
#pragma once
#include "common/error.hpp"
#include "common/loadset.hpp"
#include "server.hpp"

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snap::uffd {

// A malformed or missing handshake (exit 1: a runtime failure of the peer, not of a file).
class ProtocolError : public Error {
public:
    explicit ProtocolError(const std::string& what) : Error("firecracker handshake: " + what) {}
};

// Parse and validate the region message. Throws ProtocolError naming the field at fault.
std::vector<Region> parse_firecracker_regions(std::string_view json);
// The message as Firecracker would send it (fcclient, tests).
std::string firecracker_regions_json(const std::vector<Region>& regions, bool legacy_field = false);

// A listening unix socket; the socket file is removed on destruction. A stale socket file at
// the path is replaced; any other file there is an error.
// The socket is 0600 (whatever the umask): only its owner (and root) may connect. With
// `shared` it is 0666, for peers of other uids that accept_firecracker() then checks one by
// one (SO_PEERCRED against its allowed list).
class UnixListener {
public:
    explicit UnixListener(const std::string& path, int backlog = 1, bool shared = false);
    ~UnixListener();
    UnixListener(const UnixListener&) = delete;
    UnixListener& operator=(const UnixListener&) = delete;
    int fd() const { return fd_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

// A socket descriptor, closed on destruction.
class SocketFd {
public:
    SocketFd() = default;
    explicit SocketFd(int fd) : fd_(fd) {}
    ~SocketFd();
    SocketFd(SocketFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    SocketFd& operator=(SocketFd&& o) noexcept;
    SocketFd(const SocketFd&) = delete;
    SocketFd& operator=(const SocketFd&) = delete;
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

struct FirecrackerPeer {
    SocketFd conn;  // the connection, kept open while serving (its peer's end tells death)
    Userfaultfd uffd;
    std::vector<Region> regions;
    pid_t pid = 0;
    uid_t uid = 0;
    std::string message;  // the JSON as received
};

// Accept one connection and read the handshake. timeout_ms < 0: wait forever.
// Throws ProtocolError (timeouts included); the peer of a rejected handshake (another uid, a
// malformed message, something other than a userfaultfd) is killed first: it must not wait
// for memory nobody will serve.
// Only a peer of this process's uid, or of one of `allowed_uids`, is served; any other is
// killed (SIGKILL, its pid from SO_PEERCRED) and refused with a ProtocolError naming its uid.
FirecrackerPeer accept_firecracker(UnixListener& listener, int accept_timeout_ms, int message_timeout_ms,
                                   uint64_t assumed_features, const std::vector<uid_t>& allowed_uids = {});

struct ServeOptions {
    ServerOptions server;                  // granule, zeropage, record …
    int accept_timeout_ms = 60000;         // Firecracker's docs ask for timeouts; <0 = forever
    int message_timeout_ms = 5000;
    std::vector<uid_t> allowed_uids;       // peers of these uids are served too (the socket is then 0666)
    std::vector<PageRange> eager;          // installed right after the handshake (REAP)
    std::vector<PageRange> present;        // pages the VMM's mapping already holds in place (not served)
    bool send_ready = false;               // after the eager installs, send snapkit's ready byte (the preload waits for it)
    // A guardian process that outlives this one: if the server dies without saying it is done
    // (SIGKILL, a crash), the guardian kills the peer, which would otherwise hang on a fault
    // nobody serves. For peers that cannot watch for themselves (Firecracker).
    bool guardian = false;
    bool kill_peer_on_error = true;        // SIGKILL the VMM if serving fails or we are signalled
    // What Firecracker negotiated (it asks for UFFD_FEATURE_EVENT_REMOVE for the balloon).
    uint64_t assumed_features = UFFD_FEATURE_EVENT_REMOVE;
    const std::atomic<bool>* stop = nullptr;  // set → stop serving (the peer is left alone)
    std::function<void(const std::string& socket_path)> on_listening;  // start the VMM here
    std::function<void(const FirecrackerPeer&, FaultServer&)> on_connected;
    // How `eager` is installed (default: server.install(eager)); returns the pages installed.
    // REAP's reads its working set window by window and installs each (PlacedSource::install_hot_parts).
    std::function<uint64_t(FaultServer&, std::span<const PageRange>)> install_eager;
};

struct ServeResult {
    std::vector<Region> regions;
    pid_t peer_pid = 0;
    ServerStats stats;
    uint64_t eager_pages = 0;
    bool peer_exited = false;     // false: stopped by opt.stop
    LoadingSet recording;         // with server.record; image.fingerprint is 0: the caller sets it
    nlohmann::json to_json() const;
};

// The serve loop, for an accepted peer (Firecracker, or snapkit's preload inside any VMM):
// eager installs, the ready byte if asked, then every fault until the peer exits. On any
// error (and on SIGINT/SIGTERM/SIGHUP while serving) the peer is killed first.
ServeResult serve_peer(FirecrackerPeer peer, PageSource& source, const ServeOptions& opt);

// Listen on socket_path, accept Firecracker, serve its faults from source until it exits.
// On any error (and on SIGINT/SIGTERM/SIGHUP while serving) the peer is killed first, so
// that the VM cannot hang on a fault nobody serves; then the error is rethrown.
ServeResult serve_firecracker(const std::string& socket_path, PageSource& source, const ServeOptions& opt = {});

}  // namespace snap::uffd

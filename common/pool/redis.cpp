// SPDX-License-Identifier: Apache-2.0
// The Redis (Cluster) transport of the pool tier: URL parsing, hash slots, the slot map and
// the pipelined batch engine with MOVED/ASK handling, all over blocking hiredis 0.14 contexts
// (one per node, made on first use, kept). Every socket read and write is bounded by the io
// timeout, so a dead or wedged node ends an operation with a PoolError instead of a hang.
#include "common/pool/redis.hpp"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>
#include <type_traits>
#include <utility>

namespace snap::pool {

// ---------------------------------------------------------------------------------------------
// URLs

std::string Endpoint::name() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

bool is_pool_url(std::string_view text) { return text.starts_with("redis://"); }

namespace {

bool is_ns_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}
bool is_host_char(char c) { return is_ns_char(c); }
bool is_v6_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

int parse_port(std::string_view s, const std::string& bad) {
    if (s.empty()) throw UsageError(bad + "empty port after ':'");
    if (s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw UsageError(bad + "port '" + std::string(s) + "' is not a number in 1..65535");
    int port = std::stoi(std::string(s));
    if (port < 1 || port > 65535) throw UsageError(bad + "port " + std::string(s) + " is outside 1..65535");
    return port;
}

Endpoint parse_seed(std::string_view item, const std::string& bad) {
    Endpoint ep;
    std::string_view port_text;
    bool has_port = false;
    if (item.starts_with('[')) {
        size_t close = item.find(']');
        if (close == std::string_view::npos) throw UsageError(bad + "unclosed '[' in '" + std::string(item) + "'");
        std::string_view host = item.substr(1, close - 1);
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_v6_char) ||
            host.find(':') == std::string_view::npos)
            throw UsageError(bad + "'" + std::string(host) + "' is not an IPv6 address");
        ep.host = std::string(host);
        std::string_view after = item.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') throw UsageError(bad + "expected ':PORT' after ']' in '" + std::string(item) + "'");
            port_text = after.substr(1);
            has_port = true;
        }
    } else {
        size_t colon = item.find(':');
        if (colon != std::string_view::npos && item.find(':', colon + 1) != std::string_view::npos)
            throw UsageError(bad + "an IPv6 address goes in brackets: [ADDR]:PORT",
                             "e.g. redis://[::1]:6379/snapkit");
        std::string_view host = item.substr(0, colon);
        if (host.empty()) throw UsageError(bad + "empty host in '" + std::string(item) + "'");
        if (!std::all_of(host.begin(), host.end(), is_host_char))
            throw UsageError(bad + "'" + std::string(host) + "' is not a host name or IPv4 address");
        ep.host.reserve(host.size());
        for (char c : host) ep.host += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        if (colon != std::string_view::npos) {
            port_text = item.substr(colon + 1);
            has_port = true;
        }
    }
    if (has_port) ep.port = parse_port(port_text, bad);
    return ep;
}

}  // namespace

PoolUrl parse_pool_url(std::string_view text) {
    const std::string bad = "pool url '" + std::string(text) + "': ";
    const char* example = "e.g. redis://127.0.0.1:6379/snapkit or redis://h1:7000,h2:7000/ns";
    if (text.starts_with("rediss://")) throw UsageError(bad + "TLS (rediss://) is not supported");
    if (!is_pool_url(text)) throw UsageError(bad + "must start with redis://", example);
    std::string_view rest = text.substr(8);
    size_t slash = rest.find('/');
    std::string_view auth = rest.substr(0, slash);
    std::string_view ns = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (auth.find('@') != std::string_view::npos)
        throw UsageError(bad + "credentials (user:password@) are not supported");
    if (auth.empty()) throw UsageError(bad + "no HOST:PORT", example);

    PoolUrl url;
    size_t start = 0;
    while (true) {
        size_t comma = auth.find(',', start);
        std::string_view item = auth.substr(start, comma == std::string_view::npos ? auth.npos : comma - start);
        if (item.empty()) throw UsageError(bad + "empty seed (a stray ',')");
        Endpoint ep = parse_seed(item, bad);
        if (std::find(url.seeds.begin(), url.seeds.end(), ep) != url.seeds.end())
            throw UsageError(bad + "seed " + ep.name() + " is given twice");
        url.seeds.push_back(std::move(ep));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }

    if (ns.empty()) ns = kDefaultNamespace;
    if (ns.size() > 64) throw UsageError(bad + "namespace is longer than 64 characters");
    for (char c : ns)
        if (!is_ns_char(c))
            throw UsageError(bad + "namespace '" + std::string(ns) + "' may hold only A-Z a-z 0-9 . _ -");
    url.ns = std::string(ns);

    url.text = "redis://";
    for (size_t i = 0; i < url.seeds.size(); ++i) url.text += (i ? "," : "") + url.seeds[i].name();
    url.text += "/" + url.ns;
    return url;
}

PoolError::PoolError(const std::string& node, const std::string& why, std::string hint)
    : Error(node + ": " + why, ExitCode::runtime, std::move(hint)), node_(node), why_(why) {}

std::string printable(std::string_view bytes) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        if (out.size() >= 80) {
            out += "...";
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Hash slots

namespace {

constexpr std::array<uint16_t, 256> make_crc16_table() {
    std::array<uint16_t, 256> t{};
    for (int i = 0; i < 256; ++i) {
        uint16_t crc = static_cast<uint16_t>(i << 8);
        for (int b = 0; b < 8; ++b) crc = static_cast<uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
        t[i] = crc;
    }
    return t;
}
constexpr auto kCrc16Table = make_crc16_table();

}  // namespace

uint16_t crc16(std::string_view data) {
    uint16_t crc = 0;
    for (unsigned char c : data) crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ c) & 0xff]);
    return crc;
}

int key_slot(std::string_view key) {
    size_t open = key.find('{');
    if (open != std::string_view::npos) {
        size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (kSlots - 1);
}

std::vector<SlotRange> parse_cluster_slots(const redisReply& reply, const Endpoint& asked) {
    auto bad = [](const std::string& why) { return BadInput("CLUSTER SLOTS", why); };
    if (reply.type != REDIS_REPLY_ARRAY) throw bad("the reply is not an array");
    std::vector<SlotRange> out;
    for (size_t i = 0; i < reply.elements; ++i) {
        const redisReply* e = reply.element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY)
            throw bad("entry " + std::to_string(i) + " is not [first, last, [host, port, ...], ...]");
        SlotRange r;
        long long first = e->element[0]->integer, last = e->element[1]->integer;
        if (first < 0 || last >= kSlots || first > last)
            throw bad("entry " + std::to_string(i) + ": slots " + std::to_string(first) + ".." + std::to_string(last));
        r.first = static_cast<int>(first);
        r.last = static_cast<int>(last);
        const redisReply* m = e->element[2];
        if (m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
            throw bad("entry " + std::to_string(i) + ": the master is not [host, port, ...]");
        std::string host(m->element[0]->str, m->element[0]->len);
        long long port = m->element[1]->integer;
        if (port < 1 || port > 65535) throw bad("entry " + std::to_string(i) + ": port " + std::to_string(port));
        r.master.host = host.empty() || host == "?" ? asked.host : host;
        r.master.port = static_cast<int>(port);
        out.push_back(std::move(r));
    }
    std::sort(out.begin(), out.end(), [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
    for (size_t i = 1; i < out.size(); ++i)
        if (out[i].first <= out[i - 1].last)
            throw bad("slot ranges " + std::to_string(out[i - 1].first) + ".." + std::to_string(out[i - 1].last) +
                      " and " + std::to_string(out[i].first) + ".." + std::to_string(out[i].last) + " overlap");
    return out;
}

std::optional<Redirect> parse_redirect(std::string_view error, const Endpoint& from) {
    Redirect r;
    if (error.starts_with("MOVED "))
        error.remove_prefix(6);
    else if (error.starts_with("ASK "))
        error.remove_prefix(4), r.ask = true;
    else
        return std::nullopt;
    size_t sp = error.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 5) return std::nullopt;
    std::string_view slot = error.substr(0, sp), addr = error.substr(sp + 1);
    size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view host = addr.substr(0, colon), port = addr.substr(colon + 1);
    auto digits = [](std::string_view t) {
        return !t.empty() && t.size() <= 5 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(slot) || !digits(port)) return std::nullopt;
    r.slot = std::stoi(std::string(slot));
    r.to.port = std::stoi(std::string(port));
    if (r.slot >= kSlots || r.to.port < 1 || r.to.port > 65535) return std::nullopt;
    if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
    r.to.host = host.empty() ? from.host : std::string(host);
    return r;
}

// ---------------------------------------------------------------------------------------------
// The client

namespace {

constexpr size_t kMaxPipelineCommands = 512;
constexpr size_t kMaxPipelineBytes = size_t{32} << 20;
constexpr int kMaxRedirects = 5;

// get_each's values are handed over from inside hiredis's reader (sink_string below): the
// reply then is this marker, owned by no one, instead of a copy of the value.
redisReply g_sunk{};  // type REDIS_REPLY_STRING, set at first use; never written after

struct ReplyFree {
    void operator()(redisReply* r) const {
        if (r && r != &g_sunk) freeReplyObject(r);
    }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

timeval to_timeval(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

std::string reply_text(const redisReply& r) { return std::string(r.str ? r.str : "", r.len); }

// hiredis writes with write(2): a peer that went away would raise SIGPIPE and kill a process
// that did not ignore it. Block it in this thread while we talk, and swallow one we caused.
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~SigpipeBlock() {
        if (!was_pending_) {
            sigset_t pending;
            sigpending(&pending);
            if (sigismember(&pending, SIGPIPE)) {
                timespec zero{0, 0};
                sigtimedwait(&pipe_, nullptr, &zero);
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

private:
    sigset_t pipe_, old_;
    bool was_pending_;
};

// One command of a batch: argv[1] is always the key.
struct Cmd {
    std::array<std::string_view, 6> argv;
    int argc = 0;
    std::string_view key() const { return argv[1]; }
    size_t bytes() const {
        size_t n = 16;
        for (int i = 0; i < argc; ++i) n += argv[i].size() + 16;
        return n;
    }
};

// A reply handler: true if the reply has the expected shape.
using OnReply = std::function<bool(size_t index, const redisReply& reply)>;

}  // namespace

struct RedisCluster::Impl {
    struct Node {
        Endpoint ep;
        std::string name;
        redisContext* ctx = nullptr;
        size_t outstanding = 0;  // replies not read yet
        bool wrote = false;
        std::vector<char> in;    // bytes read from the socket, not yet given to hiredis's reader
        size_t in_pos = 0, in_len = 0;
    };

    ClientOptions opt;
    PoolUrl url;
    bool cluster = false;
    std::vector<Node> nodes;
    std::vector<int> slot_owner = std::vector<int>(kSlots, -1);  // node index; cluster mode only
    size_t plain = 0;                                            // the node, plain mode
    uint64_t round_trips = 0, commands = 0, redirects = 0;
    // While get_each runs: each top-level bulk string is handed to *sink, with sink_index (the
    // command whose reply is being read), from inside hiredis's reader, straight out of its
    // buffer: no reply object holding a copy of the value. A throw from *sink cannot cross
    // the reader (C): it is kept here and rethrown once the reply is read.
    const std::function<void(size_t, std::string_view)>* sink = nullptr;
    size_t sink_index = 0;
    std::exception_ptr sink_failure;

    // hiredis 0.14 keeps its reply functions private: the defaults are read off a reader.
    static const redisReplyObjectFunctions& default_functions() {
        static const redisReplyObjectFunctions fns = [] {
            redisReader* r = redisReaderCreate();
            if (!r) throw std::bad_alloc();
            redisReplyObjectFunctions f = *r->fn;
            redisReaderFree(r);
            return f;
        }();
        return fns;
    }
    static void* sink_string(const redisReadTask* task, char* str, size_t len) {
        auto* im = static_cast<Impl*>(task->privdata);
        if (im && im->sink && task->type == REDIS_REPLY_STRING && !task->parent) {
            try {
                (*im->sink)(im->sink_index, std::string_view(str, len));
            } catch (...) {
                if (!im->sink_failure) im->sink_failure = std::current_exception();
            }
            return &g_sunk;
        }
        return default_functions().createString(task, str, len);
    }
    static void free_object(void* obj) {
        if (obj != &g_sunk) default_functions().freeObject(obj);
    }
    static redisReplyObjectFunctions* sink_functions() {
        static redisReplyObjectFunctions fns = [] {
            g_sunk.type = REDIS_REPLY_STRING;
            redisReplyObjectFunctions f = default_functions();
            f.createString = sink_string;
            f.freeObject = free_object;
            return f;
        }();
        return &fns;
    }

    ~Impl() {
        for (auto& n : nodes)
            if (n.ctx) redisFree(n.ctx);
    }

    size_t node_index(const Endpoint& ep) {
        for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i].ep == ep) return i;
        Node n;
        n.ep = ep;
        n.name = ep.name();
        nodes.push_back(std::move(n));
        return nodes.size() - 1;
    }

    void drop(size_t i) {
        if (nodes[i].ctx) redisFree(nodes[i].ctx);
        nodes[i].ctx = nullptr;
        nodes[i].outstanding = 0;
        nodes[i].in_pos = nodes[i].in_len = 0;
    }

    redisContext* connection(size_t i) {
        Node& n = nodes[i];
        if (n.ctx) return n.ctx;
        redisContext* c = redisConnectWithTimeout(n.ep.host.c_str(), n.ep.port, to_timeval(opt.connect_timeout_ms));
        if (!c) throw PoolError(n.name, "cannot connect: out of memory");
        if (c->err) {
            std::string why = c->errstr;
            redisFree(c);
            if (why.find("timed out") != std::string::npos)
                why += " (connect timeout " + std::to_string(opt.connect_timeout_ms) + " ms)";
            throw PoolError(n.name, "cannot connect: " + why);
        }
        if (redisSetTimeout(c, to_timeval(opt.io_timeout_ms)) != REDIS_OK) {
            std::string why = c->errstr;
            redisFree(c);
            throw PoolError(n.name, "cannot set the io timeout: " + why);
        }
        // hiredis frees its read buffer whenever it empties past 16 KiB (maxbuf): with 64 KiB
        // values that is a malloc and free per reply. Keep it: it never grows past one reply
        // plus one read.
        c->reader->maxbuf = 0;
        c->reader->fn = sink_functions();
        c->reader->privdata = this;
        n.ctx = c;
        return c;
    }

    // The context of node i failed (errno as it was right after the call): drop it, throw.
    [[noreturn]] void fail_io(size_t i, int saved_errno, const std::string& during) {
        Node& n = nodes[i];
        std::string why;
        int err = n.ctx ? n.ctx->err : REDIS_ERR_OTHER;
        if (err == REDIS_ERR_EOF)
            why = "connection closed by the server";
        else if (err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
            why = "no reply within " + std::to_string(opt.io_timeout_ms) + " ms (io timeout)";
        else
            why = n.ctx ? std::string(n.ctx->errstr) : "no connection";
        drop(i);
        throw PoolError(n.name, during + ": " + why);
    }

    void append(size_t i, int argc, const char** argv, const size_t* lens, const std::string& during) {
        redisContext* c = connection(i);
        if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) fail_io(i, errno, during);
        ++nodes[i].outstanding;
        ++commands;
    }
    void append(size_t i, const Cmd& cmd, const std::string& during) {
        std::array<const char*, 6> argv;
        std::array<size_t, 6> lens;
        for (int k = 0; k < cmd.argc; ++k) {
            argv[k] = cmd.argv[k].data();
            lens[k] = cmd.argv[k].size();
        }
        append(i, cmd.argc, argv.data(), lens.data(), during);
    }
    void flush(size_t i, const std::string& during) {
        redisContext* c = nodes[i].ctx;
        int done = 0;
        while (!done)
            if (redisBufferWrite(c, &done) != REDIS_OK) fail_io(i, errno, during);
        ++round_trips;
    }
    // A reply: hiredis parses (its reader), but the socket is read here, up to 1 MiB at a
    // time — redisGetReply reads 16 KiB per call (a system call per quarter of a 64 KiB
    // chunk) — and given to the reader 64 KiB at a time: the reader moves what is left of its
    // buffer after every reply, so a large feed would make that quadratic.
    template <class During>
    static std::string text_of(const During& during) {
        if constexpr (std::is_invocable_v<const During&>)
            return during();
        else
            return std::string(during);
    }
    // during: what is being read, for errors: a string, or a callable that makes one (built
    // only on failure, not for every reply of a pipeline).
    template <class During>
    ReplyPtr read(size_t i, const During& during) {
        Node& n = nodes[i];
        redisContext* c = n.ctx;
        constexpr size_t kRead = 1u << 20, kFeed = 64u << 10;
        void* r = nullptr;
        for (;;) {
            if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
                c->err = REDIS_ERR_PROTOCOL;
                std::snprintf(c->errstr, sizeof c->errstr, "%s", "protocol error in the reply");
                fail_io(i, 0, text_of(during));
            }
            if (r) {
                if (sink_failure) std::rethrow_exception(std::exchange(sink_failure, nullptr));
                break;
            }
            if (n.in_pos == n.in_len) {
                if (n.in.size() < kRead) n.in.resize(kRead);
                ssize_t got = -1;
                bool asleep = true;  // nothing came while polling: sleep in read()
                if (n.outstanding == 1) {
                    got = poll_read(c->fd, n.in);
                    asleep = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
                }
                if (asleep) got = ::read(c->fd, n.in.data(), n.in.size());
                if (got < 0 && errno == EINTR) continue;
                if (got <= 0) {
                    const int e = got == 0 ? 0 : errno;
                    c->err = got == 0 ? REDIS_ERR_EOF : REDIS_ERR_IO;
                    std::snprintf(c->errstr, sizeof c->errstr, "%s", got == 0 ? "connection closed" : std::strerror(e));
                    fail_io(i, e, text_of(during));
                }
                n.in_pos = 0;
                n.in_len = static_cast<size_t>(got);
            }
            const size_t feed = std::min(kFeed, n.in_len - n.in_pos);
            if (redisReaderFeed(c->reader, n.in.data() + n.in_pos, feed) != REDIS_OK) {
                c->err = REDIS_ERR_PROTOCOL;
                std::snprintf(c->errstr, sizeof c->errstr, "%s", "reader buffer");
                fail_io(i, 0, text_of(during));
            }
            n.in_pos += feed;
        }
        --n.outstanding;
        return ReplyPtr(static_cast<redisReply*>(r));
    }

    // Up to opt.spin_us of non-blocking reads (ClientOptions::spin_us): what it got, or -1 with
    // errno EAGAIN when nothing came (the caller then sleeps in read()).
    ssize_t poll_read(int fd, std::vector<char>& in) const {
        if (opt.spin_us <= 0) {
            errno = EAGAIN;
            return -1;
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(opt.spin_us);
        for (;;) {
            ssize_t got = ::recv(fd, in.data(), in.size(), MSG_DONTWAIT);
            if (got >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return got;
            if (std::chrono::steady_clock::now() >= until) return -1;
        }
    }

    // One command, one round trip, on node i.
    ReplyPtr command(size_t i, std::initializer_list<std::string_view> args) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (auto a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        std::string during(*args.begin());
        if (args.size() > 1) during += " " + printable(*(args.begin() + 1));
        struct Restore {  // a command inside get_each (CLUSTER SLOTS after a MOVED) keeps its reply
            Impl* im;
            const std::function<void(size_t, std::string_view)>* sink;
            ~Restore() { im->sink = sink; }
        } restore{this, std::exchange(sink, nullptr)};
        append(i, static_cast<int>(argv.size()), argv.data(), lens.data(), during);
        flush(i, during);
        return read(i, during);
    }

    // When an exception leaves a batch, connections with unread replies are out of step.
    void drop_unsynced() {
        for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i].outstanding) drop(i);
    }

    // Ask node i for the slot map. false: the node is not in cluster mode (plain server).
    bool load_slots(size_t i) {
        ReplyPtr r = command(i, {"CLUSTER", "SLOTS"});
        if (r->type == REDIS_REPLY_ERROR) {
            std::string e = reply_text(*r);
            if (e.find("cluster support disabled") != std::string::npos || e.find("unknown command") != std::string::npos ||
                e.find("unknown subcommand") != std::string::npos)
                return false;
            throw PoolError(nodes[i].name, "CLUSTER SLOTS: " + e);
        }
        std::vector<SlotRange> ranges;
        try {
            ranges = parse_cluster_slots(*r, nodes[i].ep);
        } catch (const BadInput& e) {
            throw PoolError(nodes[i].name, "CLUSTER SLOTS: " + e.why());
        }
        if (ranges.empty()) throw PoolError(nodes[i].name, "CLUSTER SLOTS: no slot is assigned to any master");
        std::fill(slot_owner.begin(), slot_owner.end(), -1);
        for (const auto& range : ranges) {
            int owner = static_cast<int>(node_index(range.master));
            for (int s = range.first; s <= range.last; ++s) slot_owner[s] = owner;
        }
        return true;
    }

    void discover() {
        std::vector<PoolError> failures;
        for (const auto& seed : url.seeds) {
            size_t i = node_index(seed);
            try {
                cluster = load_slots(i);
                if (!cluster) plain = i;
                return;
            } catch (const PoolError& e) {
                failures.push_back(e);
                drop(i);
            }
        }
        std::string why = failures[0].why();
        for (size_t k = 1; k < failures.size(); ++k) why += "; and " + failures[k].node() + ": " + failures[k].why();
        throw PoolError(failures[0].node(), why, "is the pool server running? check the pool url " + url.text);
    }

    void refresh_slots() {
        std::vector<size_t> order;
        for (int o : slot_owner)
            if (o >= 0 && std::find(order.begin(), order.end(), size_t(o)) == order.end()) order.push_back(o);
        for (size_t i = 0; i < nodes.size(); ++i)
            if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
        std::optional<PoolError> first;
        for (size_t i : order) {
            try {
                if (!load_slots(i)) throw PoolError(nodes[i].name, "CLUSTER SLOTS: cluster support is disabled here");
                return;
            } catch (const PoolError& e) {
                if (!first) first = e;
            }
        }
        throw *first;
    }

    size_t route(std::string_view key) {
        if (!cluster) return plain;
        int slot = key_slot(key);
        int owner = slot_owner[slot];
        if (owner < 0) {
            refresh_slots();
            owner = slot_owner[slot];
            if (owner < 0)
                throw PoolError(nodes[0].name, "hash slot " + std::to_string(slot) + " (key " + printable(key) +
                                                   ") is not served by any master");
        }
        return static_cast<size_t>(owner);
    }

    std::vector<Endpoint> masters() const {
        if (!cluster) return {nodes[plain].ep};
        std::vector<Endpoint> out;
        for (int o : slot_owner)
            if (o >= 0 && std::find(out.begin(), out.end(), nodes[o].ep) == out.end()) out.push_back(nodes[o].ep);
        return out;
    }
    std::vector<size_t> master_indices() {
        std::vector<size_t> out;
        for (const auto& ep : masters()) out.push_back(node_index(ep));
        return out;
    }

    // The batch engine: one pipeline per node per round (chunked), every node's pipeline in
    // flight at once, redirected commands retried in the next round.
    void run(const std::vector<Cmd>& cmds, bool writes, const OnReply& on_reply) {
        SigpipeBlock sigpipe;
        try {
            run_rounds(cmds, writes, on_reply);
        } catch (...) {
            drop_unsynced();
            throw;
        }
    }

    struct Pending {
        size_t index;
        int ask = -1;  // node to send ASKING + the command to, -1: the slot's owner
        int redirects = 0;
    };

    void run_rounds(const std::vector<Cmd>& cmds, bool writes, const OnReply& on_reply) {
        std::vector<Pending> todo(cmds.size());
        for (size_t k = 0; k < cmds.size(); ++k) todo[k].index = k;
        while (!todo.empty()) {
            std::vector<std::vector<Pending>> per_node;
            for (const Pending& p : todo) {
                size_t n = p.ask >= 0 ? size_t(p.ask) : route(cmds[p.index].key());
                if (per_node.size() <= n) per_node.resize(nodes.size());
                per_node[n].push_back(p);
            }
            todo.clear();
            std::vector<std::pair<int, Endpoint>> moved;  // slot, new owner
            std::optional<PoolError> failure;
            std::vector<size_t> pos(per_node.size(), 0), end(per_node.size(), 0);
            auto what = [&](const Cmd& c) { return std::string(c.argv[0]) + " " + printable(c.key()); };
            const std::string during = "pipeline";
            while (true) {
                bool any = false;
                for (size_t n = 0; n < per_node.size(); ++n) {
                    size_t k = pos[n], bytes = 0;
                    while (k < per_node[n].size() && k - pos[n] < kMaxPipelineCommands &&
                           (k == pos[n] || bytes + cmds[per_node[n][k].index].bytes() <= kMaxPipelineBytes)) {
                        const Pending& p = per_node[n][k];
                        const Cmd& c = cmds[p.index];
                        if (p.ask >= 0) {
                            const char* asking = "ASKING";
                            size_t len = 6;
                            append(n, 1, &asking, &len, during);
                        }
                        append(n, c, during);
                        bytes += c.bytes();
                        ++k;
                    }
                    end[n] = k;
                    if (k > pos[n]) {
                        any = true;
                        if (writes) nodes[n].wrote = true;
                    }
                }
                if (!any) break;
                for (size_t n = 0; n < per_node.size(); ++n)
                    if (end[n] > pos[n]) flush(n, during);
                for (size_t n = 0; n < per_node.size(); ++n) {
                    for (size_t k = pos[n]; k < end[n]; ++k) {
                        Pending p = per_node[n][k];
                        const Cmd& c = cmds[p.index];
                        if (p.ask >= 0) {
                            ReplyPtr ok = read(n, during);
                            if (ok->type == REDIS_REPLY_ERROR && !failure)
                                failure = PoolError(nodes[n].name, "ASKING: " + reply_text(*ok));
                        }
                        sink_index = p.index;
                        ReplyPtr r = read(n, [&] { return what(c); });
                        if (r->type == REDIS_REPLY_ERROR) {
                            std::string e = reply_text(*r);
                            std::optional<Redirect> redirect = parse_redirect(e, nodes[n].ep);
                            bool is_retry = e.starts_with("TRYAGAIN");
                            if (!redirect && !is_retry) {
                                if (!failure) failure = PoolError(nodes[n].name, what(c) + ": " + e);
                                continue;
                            }
                            ++redirects;
                            if (++p.redirects > kMaxRedirects) {
                                if (!failure)
                                    failure = PoolError(nodes[n].name, what(c) + ": still redirected after " +
                                                                           std::to_string(kMaxRedirects) + " tries (" + e + ")");
                                continue;
                            }
                            p.ask = redirect && redirect->ask ? static_cast<int>(node_index(redirect->to)) : -1;
                            if (redirect && !redirect->ask) moved.emplace_back(redirect->slot, redirect->to);
                            todo.push_back(p);
                            continue;
                        }
                        if (!on_reply(p.index, *r) && !failure)
                            failure = PoolError(nodes[n].name, what(c) + ": unexpected reply type " + std::to_string(r->type) +
                                                                   (r->type == REDIS_REPLY_STATUS ? " (" + reply_text(*r) + ")" : ""));
                    }
                    pos[n] = end[n];
                }
            }
            if (failure) throw *failure;
            if (!moved.empty()) {
                refresh_slots();
                // The redirection is the newest word; the map may come from a node that has
                // not heard of the move yet.
                for (const auto& [slot, to] : moved) slot_owner[slot] = static_cast<int>(node_index(to));
            } else if (!todo.empty()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));  // TRYAGAIN/ASK: let migration move on
            }
        }
    }
};

RedisCluster::RedisCluster(const PoolUrl& url, ClientOptions opt) : impl_(std::make_unique<Impl>()) {
    if (url.seeds.empty()) throw UsageError("pool url '" + url.text + "': no seed");
    impl_->opt = opt;
    impl_->url = url;
    SigpipeBlock sigpipe;
    impl_->discover();
}

RedisCluster::~RedisCluster() = default;

bool RedisCluster::is_cluster() const { return impl_->cluster; }
std::vector<Endpoint> RedisCluster::masters() const { return impl_->masters(); }
uint64_t RedisCluster::round_trips() const { return impl_->round_trips; }
uint64_t RedisCluster::commands() const { return impl_->commands; }
uint64_t RedisCluster::redirects() const { return impl_->redirects; }

size_t RedisCluster::connect_masters() {
    size_t connected = 0;
    for (size_t i : impl_->master_indices()) {
        try {
            impl_->connection(i);
            ++connected;
        } catch (const PoolError&) {
        }
    }
    return connected;
}

std::string RedisCluster::node_for(std::string_view key) const {
    return impl_->nodes[impl_->route(key)].name;
}

std::vector<std::optional<std::string>> RedisCluster::get(const std::vector<std::string>& keys) {
    std::vector<Cmd> cmds(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) cmds[k] = Cmd{{"GET", keys[k]}, 2};
    std::vector<std::optional<std::string>> out(keys.size());
    impl_->run(cmds, false, [&](size_t k, const redisReply& r) {
        if (r.type == REDIS_REPLY_NIL) return true;
        if (r.type != REDIS_REPLY_STRING) return false;
        out[k].emplace(r.str, r.len);
        return true;
    });
    return out;
}

void RedisCluster::get_each(const std::vector<std::string>& keys, const std::function<void(size_t, std::string_view)>& on_value) {
    std::vector<Cmd> cmds(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) cmds[k] = Cmd{{"GET", keys[k]}, 2};
    struct Unset {
        Impl* im;
        ~Unset() {
            im->sink = nullptr;
            im->sink_failure = nullptr;
        }
    } unset{impl_.get()};
    impl_->sink = &on_value;
    impl_->run(cmds, false, [&](size_t, const redisReply& r) {
        return &r == &g_sunk || r.type == REDIS_REPLY_NIL;  // a value went to on_value, or none
    });
}

std::vector<bool> RedisCluster::exists(const std::vector<std::string>& keys) {
    std::vector<Cmd> cmds(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) cmds[k] = Cmd{{"EXISTS", keys[k]}, 2};
    std::vector<bool> out(keys.size());
    impl_->run(cmds, false, [&](size_t k, const redisReply& r) {
        if (r.type != REDIS_REPLY_INTEGER) return false;
        out[k] = r.integer > 0;
        return true;
    });
    return out;
}

void RedisCluster::set(const std::vector<std::pair<std::string, std::string>>& kv, bool nx) {
    std::vector<Cmd> cmds(kv.size());
    for (size_t k = 0; k < kv.size(); ++k)
        cmds[k] = nx ? Cmd{{"SET", kv[k].first, kv[k].second, "NX"}, 4} : Cmd{{"SET", kv[k].first, kv[k].second}, 3};
    impl_->run(cmds, true, [&](size_t, const redisReply& r) {
        return (r.type == REDIS_REPLY_STATUS && reply_text(r) == "OK") || (nx && r.type == REDIS_REPLY_NIL);
    });
}

void RedisCluster::del(const std::vector<std::string>& keys) {
    std::vector<Cmd> cmds(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) cmds[k] = Cmd{{"DEL", keys[k]}, 2};
    impl_->run(cmds, true, [&](size_t, const redisReply& r) { return r.type == REDIS_REPLY_INTEGER; });
}

std::vector<std::string> RedisCluster::scan(const std::string& pattern) {
    SigpipeBlock sigpipe;
    std::vector<std::string> out;
    for (size_t n : impl_->master_indices()) {
        std::string cursor = "0";
        do {
            ReplyPtr r = impl_->command(n, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
            if (r->type == REDIS_REPLY_ERROR) throw PoolError(impl_->nodes[n].name, "SCAN: " + reply_text(*r));
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[1]->type != REDIS_REPLY_ARRAY)
                throw PoolError(impl_->nodes[n].name, "SCAN: the reply is not [cursor, [keys]]");
            cursor = reply_text(*r->element[0]);
            const redisReply& keys = *r->element[1];
            for (size_t k = 0; k < keys.elements; ++k)
                if (keys.element[k]->type == REDIS_REPLY_STRING) out.push_back(reply_text(*keys.element[k]));
        } while (cursor != "0");
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool RedisCluster::set_nx_px(const std::string& key, const std::string& value, uint64_t ttl_ms) {
    std::string ttl = std::to_string(ttl_ms);
    std::vector<Cmd> cmds{Cmd{{"SET", key, value, "NX", "PX", ttl}, 6}};
    bool set = false;
    impl_->run(cmds, true, [&](size_t, const redisReply& r) {
        set = r.type == REDIS_REPLY_STATUS && reply_text(r) == "OK";
        return set || r.type == REDIS_REPLY_NIL;
    });
    return set;
}

bool RedisCluster::pexpire(const std::string& key, uint64_t ttl_ms) {
    std::string ttl = std::to_string(ttl_ms);
    std::vector<Cmd> cmds{Cmd{{"PEXPIRE", key, ttl}, 3}};
    bool done = false;
    impl_->run(cmds, true, [&](size_t, const redisReply& r) {
        done = r.type == REDIS_REPLY_INTEGER && r.integer == 1;
        return r.type == REDIS_REPLY_INTEGER;
    });
    return done;
}

std::string RedisCluster::config_get(const Endpoint& node, const std::string& param) {
    SigpipeBlock sigpipe;
    size_t n = impl_->node_index(node);
    ReplyPtr r = impl_->command(n, {"CONFIG", "GET", param});
    const std::string& name = impl_->nodes[n].name;
    if (r->type == REDIS_REPLY_ERROR)
        throw PoolError(name, "CONFIG GET " + param + " refused: " + reply_text(*r),
                        "the pool needs CONFIG GET (not renamed or disabled) to check its settings");
    if (r->type != REDIS_REPLY_ARRAY) throw PoolError(name, "CONFIG GET " + param + ": the reply is not an array");
    for (size_t k = 0; k + 1 < r->elements; k += 2)
        if (r->element[k]->type == REDIS_REPLY_STRING && reply_text(*r->element[k]) == param &&
            r->element[k + 1]->type == REDIS_REPLY_STRING)
            return reply_text(*r->element[k + 1]);
    throw PoolError(name, "CONFIG GET " + param + ": no such parameter");
}

void RedisCluster::check_no_eviction() {
    for (const auto& m : masters()) {
        std::string policy = config_get(m, "maxmemory-policy");
        if (policy != "noeviction")
            throw PoolError(m.name(), "maxmemory-policy is " + policy + ", not noeviction: the server may evict chunks",
                            "run 'redis-cli -h " + m.host + " -p " + std::to_string(m.port) +
                                " config set maxmemory-policy noeviction' (and in redis.conf)");
    }
}

int RedisCluster::wait_replicas(int replicas, int timeout_ms) {
    if (timeout_ms <= 0) throw UsageError("wait_replicas: the timeout must be positive (0 would wait forever)");
    SigpipeBlock sigpipe;
    auto& im = *impl_;
    std::vector<size_t> written;
    for (size_t n = 0; n < im.nodes.size(); ++n)
        if (im.nodes[n].wrote) written.push_back(n);
    if (written.empty()) return replicas;
    std::string nrep = std::to_string(replicas), tmo = std::to_string(timeout_ms);
    const char* argv[3] = {"WAIT", nrep.c_str(), tmo.c_str()};
    size_t lens[3] = {4, nrep.size(), tmo.size()};
    int least = INT32_MAX;
    try {
        for (size_t n : written) {
            im.append(n, 3, argv, lens, "WAIT");
            redisSetTimeout(im.nodes[n].ctx, to_timeval(im.opt.io_timeout_ms + timeout_ms));
            im.flush(n, "WAIT");
        }
        std::optional<PoolError> failure;
        for (size_t n : written) {
            ReplyPtr r = im.read(n, "WAIT");
            redisSetTimeout(im.nodes[n].ctx, to_timeval(im.opt.io_timeout_ms));
            if (r->type == REDIS_REPLY_INTEGER)
                least = std::min(least, static_cast<int>(r->integer));
            else if (!failure)
                failure = PoolError(im.nodes[n].name, "WAIT: " + (r->type == REDIS_REPLY_ERROR ? reply_text(*r) : "not an integer"));
        }
        if (failure) throw *failure;
    } catch (...) {
        im.drop_unsynced();
        throw;
    }
    return least;
}

}  // namespace snap::pool

// SPDX-License-Identifier: Apache-2.0
// The pool tier's transport: a synchronous Redis Cluster (or single plain server) client over
// hiredis 0.14, which speaks RESP but knows nothing of clusters. Here: pool URLs, CRC16 hash
// slots with the {hashtag} rule, the CLUSTER SLOTS map, batches grouped into one pipeline per
// node, MOVED/ASK redirections, and the durability checks (noeviction, WAIT). The chunk store
// sits on top of this and never sees a hiredis type.
#pragma once
#include "common/error.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct redisReply;  // hiredis; only parse_cluster_slots() takes one

namespace snap::pool {

struct Endpoint {
    std::string host;  // IPv4 address, hostname or bare IPv6 address (no brackets)
    int port = 6379;
    std::string name() const;  // "host:port" ("[v6]:port" for IPv6)
    bool operator==(const Endpoint&) const = default;
};

struct PoolUrl {
    std::vector<Endpoint> seeds;  // at least one
    std::string ns;               // namespace ("" -> "snapkit"); only [A-Za-z0-9._-], 1..64 chars
    std::string text;             // canonical spelling: redis://h:p[,h:p...]/ns
};

constexpr std::string_view kDefaultNamespace = "snapkit";

// "redis://HOST:PORT[,HOST:PORT…][/NAMESPACE]" (port defaults to 6379; IPv4, hostnames,
// [v6]:port). Throws UsageError naming what is wrong.
PoolUrl parse_pool_url(std::string_view text);
bool is_pool_url(std::string_view text);  // starts with "redis://"

// A node failed (connect refused, timeout, connection lost, an error reply we cannot handle):
// exit code 1; the message names the node "host:port" and what happened.
class PoolError : public Error {
public:
    PoolError(const std::string& node, const std::string& why, std::string hint = {});
    const std::string& node() const noexcept { return node_; }
    const std::string& why() const noexcept { return why_; }

private:
    std::string node_, why_;
};

struct ClientOptions {
    int connect_timeout_ms = 2000;
    int io_timeout_ms = 5000;
    // A lone command (one reply outstanding: a demand fetch, a lock) polls its socket this long
    // before it sleeps: a sleeping thread on these VMs takes tens of µs to wake, on top of the
    // server's own. bench/pool_bench.sh, one node, idle cores: a 4 KiB fault's fetch 91-109 µs
    // asleep, 61-72 µs with 100-200 µs of polling. 0 = sleep at once.
    int spin_us = 100;
};

// Hash slots (Redis Cluster spec): CRC16/XMODEM of the key, or of the first non-empty
// {hashtag} in it, modulo 16384.
constexpr int kSlots = 16384;
uint16_t crc16(std::string_view data);
int key_slot(std::string_view key);

// One contiguous range of slots and the master serving it (CLUSTER SLOTS, replicas ignored).
struct SlotRange {
    int first = 0, last = 0;  // inclusive
    Endpoint master;
};
// Decode a CLUSTER SLOTS reply. An empty or "?" host (a node that does not know its own
// address, or hides it) means the node the reply came from: `asked`. Throws BadInput
// (file = "CLUSTER SLOTS") on a malformed reply.
std::vector<SlotRange> parse_cluster_slots(const redisReply& reply, const Endpoint& asked);

// An error reply that redirects a key: "MOVED 3999 127.0.0.1:6381", "ASK 3999 ::1:6381" (Redis
// prints IPv6 without brackets; with them is accepted too), "MOVED 3999 :6381" (empty host:
// the node that replied, `from`). nullopt: any other error.
struct Redirect {
    bool ask = false;  // ASK (this key, this once) rather than MOVED (the slot, from now on)
    int slot = 0;
    Endpoint to;
};
std::optional<Redirect> parse_redirect(std::string_view error, const Endpoint& from);

// A key or value for messages: printable ASCII kept, anything else as \xHH, cut at 80 chars.
std::string printable(std::string_view bytes);

// One client, used by one thread at a time (make one per thread). The constructor asks the
// seeds (in order, the first that answers) for the slot map; connections to the other nodes
// are made when first needed and kept.
class RedisCluster {
public:
    explicit RedisCluster(const PoolUrl& url, ClientOptions opt = {});
    ~RedisCluster();
    RedisCluster(const RedisCluster&) = delete;
    RedisCluster& operator=(const RedisCluster&) = delete;

    // CLUSTER SLOTS worked (cluster_enabled); else one plain server (the first reachable seed).
    bool is_cluster() const;
    std::vector<Endpoint> masters() const;            // every master (plain: the one server)
    std::string node_for(std::string_view key) const;  // "host:port" serving that key now
    // Connect to every master now rather than at its first command (a restore's first fault
    // on each node would pay the connect). Best effort: a node that cannot be reached is left
    // to the command that needs it, which reports it. Returns the masters connected.
    size_t connect_masters();

    // Batches: keys grouped by node, one pipeline per node (at most 512 commands or 32 MiB
    // each), replies in the caller's key order. MOVED refreshes the slot map and retries, ASK
    // sends ASKING + the command to the target; after 5 redirections of one key: PoolError.
    std::vector<std::optional<std::string>> get(const std::vector<std::string>& keys);  // nullopt = missing
    // get() without a copy: on_value(k, bytes) for every key that exists, called from inside
    // hiredis's reader with the value still in its read buffer (valid during the call only;
    // no reply object is made for it), in reply order per node; missing keys are not called.
    // on_value should not throw (record a failure, act on it after the call): a throw ends the
    // batch once that reply is read, and the node's connection is dropped.
    void get_each(const std::vector<std::string>& keys, const std::function<void(size_t, std::string_view)>& on_value);
    std::vector<bool> exists(const std::vector<std::string>& keys);
    // SET every pair; returns once every node acknowledged every SET (an error reply ->
    // PoolError naming the node and the key). nx: SET NX (existing keys are left alone).
    void set(const std::vector<std::pair<std::string, std::string>>& kv, bool nx = false);
    void del(const std::vector<std::string>& keys);  // missing keys are fine
    // Keys matching a glob pattern on every master (SCAN MATCH COUNT 1000), sorted, unique.
    std::vector<std::string> scan(const std::string& pattern);

    // Single-key helpers for locks, leases and set-like registries.
    bool set_nx_px(const std::string& key, const std::string& value, uint64_t ttl_ms);  // true when set
    bool pexpire(const std::string& key, uint64_t ttl_ms);  // false: no such key

    // CONFIG GET maxmemory-policy on every master; PoolError unless all are "noeviction" (a
    // cache that evicts a chunk breaks a snapshot silently), or when CONFIG is refused.
    void check_no_eviction();
    std::string config_get(const Endpoint& node, const std::string& param);
    // WAIT replicas timeout_ms (> 0) on every master this client wrote to; the minimum
    // acknowledged count (0 with no replicas). No writes yet: nothing to wait for, `replicas`.
    int wait_replicas(int replicas, int timeout_ms);

    uint64_t round_trips() const;  // pipelines flushed (one per node per batch chunk)
    uint64_t commands() const;     // commands sent, ASKING and CLUSTER SLOTS included
    uint64_t redirects() const;    // MOVED, ASK and TRYAGAIN replies followed

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace snap::pool

// SPDX-License-Identifier: Apache-2.0
// The pool transport's pure parts, no server needed: pool URL spellings (good ones and the
// error each bad one gets), CRC16/XMODEM and hash-slot known answers from the Redis Cluster
// spec, and CLUSTER SLOTS decoding from RESP bytes (hiredis' own reader makes the reply).
#include "common/pool/redis.hpp"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <string>

using namespace snap::pool;

namespace {

std::string url_error(std::string_view text) {
    try {
        parse_pool_url(text);
    } catch (const snap::UsageError& e) {
        CHECK(e.code() == snap::ExitCode::usage);
        return e.what();
    }
    return "(accepted)";
}

struct Reply {
    redisReply* r = nullptr;
    explicit Reply(const std::string& resp) {
        redisReader* reader = redisReaderCreate();
        REQUIRE(redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK);
        void* out = nullptr;
        REQUIRE(redisReaderGetReply(reader, &out) == REDIS_OK);
        REQUIRE(out != nullptr);
        r = static_cast<redisReply*>(out);
        redisReaderFree(reader);
    }
    ~Reply() { freeReplyObject(r); }
};

std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }
std::string node(const std::string& host, int port, const std::string& id, bool meta) {
    return std::string(meta ? "*4\r\n" : "*3\r\n") + bulk(host) + ":" + std::to_string(port) + "\r\n" + bulk(id) +
           (meta ? "*0\r\n" : "");
}

}  // namespace

TEST_CASE("pool url: good spellings and their canonical text") {
    auto u = parse_pool_url("redis://127.0.0.1:6379/snapkit");
    REQUIRE(u.seeds.size() == 1);
    CHECK(u.seeds[0] == Endpoint{"127.0.0.1", 6379});
    CHECK(u.ns == "snapkit");
    CHECK(u.text == "redis://127.0.0.1:6379/snapkit");

    u = parse_pool_url("redis://localhost");
    CHECK(u.seeds[0] == Endpoint{"localhost", 6379});
    CHECK(u.ns == "snapkit");
    CHECK(u.text == "redis://localhost:6379/snapkit");

    u = parse_pool_url("redis://Pool-1.Example.com:7000,10.0.0.2:7001,h3/ns-1.x_Y");
    REQUIRE(u.seeds.size() == 3);
    CHECK(u.seeds[0] == Endpoint{"pool-1.example.com", 7000});
    CHECK(u.seeds[1] == Endpoint{"10.0.0.2", 7001});
    CHECK(u.seeds[2] == Endpoint{"h3", 6379});
    CHECK(u.ns == "ns-1.x_Y");
    CHECK(u.text == "redis://pool-1.example.com:7000,10.0.0.2:7001,h3:6379/ns-1.x_Y");

    u = parse_pool_url("redis://[::1]:7000,[fe80::1]/a");
    CHECK(u.seeds[0] == Endpoint{"::1", 7000});
    CHECK(u.seeds[0].name() == "[::1]:7000");
    CHECK(u.seeds[1] == Endpoint{"fe80::1", 6379});
    CHECK(u.text == "redis://[::1]:7000,[fe80::1]:6379/a");

    CHECK(parse_pool_url("redis://h:1/").ns == "snapkit");
    CHECK(parse_pool_url("redis://h:65535/" + std::string(64, 'n')).ns.size() == 64);
    CHECK(parse_pool_url(parse_pool_url("redis://H:9/x").text).text == "redis://h:9/x");

    CHECK(is_pool_url("redis://h"));
    CHECK_FALSE(is_pool_url("rediss://h"));
    CHECK_FALSE(is_pool_url("file:/ssd"));
    CHECK_FALSE(is_pool_url("dram"));
}

TEST_CASE("pool url: every bad spelling says what is wrong") {
    CHECK(url_error("http://h:1") == "pool url 'http://h:1': must start with redis://");
    CHECK(url_error("rediss://h:1") == "pool url 'rediss://h:1': TLS (rediss://) is not supported");
    CHECK(url_error("redis://") == "pool url 'redis://': no HOST:PORT");
    CHECK(url_error("redis:///ns") == "pool url 'redis:///ns': no HOST:PORT");
    CHECK(url_error("redis://h:0") == "pool url 'redis://h:0': port 0 is outside 1..65535");
    CHECK(url_error("redis://h:65536") == "pool url 'redis://h:65536': port 65536 is outside 1..65535");
    CHECK(url_error("redis://h:abc") == "pool url 'redis://h:abc': port 'abc' is not a number in 1..65535");
    CHECK(url_error("redis://h:123456") == "pool url 'redis://h:123456': port '123456' is not a number in 1..65535");
    CHECK(url_error("redis://h:") == "pool url 'redis://h:': empty port after ':'");
    CHECK(url_error("redis://:7000") == "pool url 'redis://:7000': empty host in ':7000'");
    CHECK(url_error("redis://h1,,h2") == "pool url 'redis://h1,,h2': empty seed (a stray ',')");
    CHECK(url_error("redis://h1,") == "pool url 'redis://h1,': empty seed (a stray ',')");
    CHECK(url_error("redis://::1:7000") == "pool url 'redis://::1:7000': an IPv6 address goes in brackets: [ADDR]:PORT");
    CHECK(url_error("redis://[::1") == "pool url 'redis://[::1': unclosed '[' in '[::1'");
    CHECK(url_error("redis://[::1]7000") == "pool url 'redis://[::1]7000': expected ':PORT' after ']' in '[::1]7000'");
    CHECK(url_error("redis://[h1]:1") == "pool url 'redis://[h1]:1': 'h1' is not an IPv6 address");
    CHECK(url_error("redis://h_1%:1") == "pool url 'redis://h_1%:1': 'h_1%' is not a host name or IPv4 address");
    CHECK(url_error("redis://u:p@h:1") == "pool url 'redis://u:p@h:1': credentials (user:password@) are not supported");
    CHECK(url_error("redis://h/bad ns") == "pool url 'redis://h/bad ns': namespace 'bad ns' may hold only A-Z a-z 0-9 . _ -");
    CHECK(url_error("redis://h/a/b") == "pool url 'redis://h/a/b': namespace 'a/b' may hold only A-Z a-z 0-9 . _ -");
    CHECK(url_error("redis://h/" + std::string(65, 'n')) ==
          "pool url 'redis://h/" + std::string(65, 'n') + "': namespace is longer than 64 characters");
    CHECK(url_error("redis://h:1,H:1") == "pool url 'redis://h:1,H:1': seed h:1 is given twice");
}

TEST_CASE("hash slots: the Redis Cluster spec's known answers") {
    CHECK(crc16("123456789") == 0x31C3);
    CHECK(crc16("") == 0);
    CHECK(key_slot("foo") == 12182);
    CHECK(key_slot("bar") == 5061);
    CHECK(key_slot("123456789") == (0x31C3 & 16383));
    CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
    CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
    CHECK(key_slot("foo{}{bar}") == (crc16("foo{}{bar}") & 16383));  // empty tag: the whole key
    CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));            // the tag is "{bar"
    CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));             // the first tag only
    CHECK(key_slot("{unclosed") == (crc16("{unclosed") & 16383));
    std::string binary("a\0{b\0}c", 7);
    CHECK(key_slot(binary) == key_slot(std::string("b\0", 2)));
    for (int i = 0; i < 1000; ++i) {
        int s = key_slot("k" + std::to_string(i));
        CHECK((s >= 0 && s < kSlots));
    }
}

TEST_CASE("CLUSTER SLOTS: three masters, a replica, Redis 7 metadata, an unknown host") {
    std::string resp = "*3\r\n";
    resp += "*4\r\n:0\r\n:5460\r\n" + node("127.0.0.1", 7000, "a", true) + node("127.0.0.1", 7100, "r", true);
    resp += "*3\r\n:10923\r\n:16383\r\n" + node("", 7002, "c", false);
    resp += "*3\r\n:5461\r\n:10922\r\n" + node("?", 7001, "b", true);
    Reply r(resp);
    auto ranges = parse_cluster_slots(*r.r, Endpoint{"10.1.1.1", 7005});
    REQUIRE(ranges.size() == 3);
    CHECK(ranges[0].first == 0);
    CHECK(ranges[0].last == 5460);
    CHECK(ranges[0].master == Endpoint{"127.0.0.1", 7000});
    CHECK(ranges[1].first == 5461);
    CHECK(ranges[1].master == Endpoint{"10.1.1.1", 7001});  // "?": the node we asked
    CHECK(ranges[2].last == 16383);
    CHECK(ranges[2].master == Endpoint{"10.1.1.1", 7002});  // "": the node we asked

    Reply empty("*0\r\n");
    CHECK(parse_cluster_slots(*empty.r, Endpoint{}).empty());
}

TEST_CASE("CLUSTER SLOTS: malformed replies are BadInput") {
    auto fails = [](const std::string& resp, const std::string& why) {
        Reply r(resp);
        try {
            parse_cluster_slots(*r.r, Endpoint{"h", 1});
            FAIL("accepted: " << resp);
        } catch (const snap::BadInput& e) {
            CHECK(e.file() == "CLUSTER SLOTS");
            CHECK(e.why() == why);
        }
    };
    fails("+OK\r\n", "the reply is not an array");
    fails("*1\r\n:1\r\n", "entry 0 is not [first, last, [host, port, ...], ...]");
    fails("*1\r\n*2\r\n:0\r\n:1\r\n", "entry 0 is not [first, last, [host, port, ...], ...]");
    fails("*1\r\n*3\r\n:5\r\n:1\r\n" + node("h", 1, "x", false), "entry 0: slots 5..1");
    fails("*1\r\n*3\r\n:0\r\n:16384\r\n" + node("h", 1, "x", false), "entry 0: slots 0..16384");
    fails("*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n" + bulk("h"), "entry 0: the master is not [host, port, ...]");
    fails("*1\r\n*3\r\n:0\r\n:1\r\n" + node("h", 0, "x", false), "entry 0: port 0");
    fails("*2\r\n*3\r\n:0\r\n:10\r\n" + node("h", 1, "x", false) + "*3\r\n:10\r\n:20\r\n" + node("h", 2, "y", false),
          "slot ranges 0..10 and 10..20 overlap");
}

TEST_CASE("printable: binary keys in messages") {
    CHECK(printable("abc") == "abc");
    CHECK(printable(std::string("a\0b\\", 4)) == "a\\x00b\\x5c");
    CHECK(printable(std::string(100, 'x')) == std::string(80, 'x') + "...");
}

TEST_CASE("PoolError: names the node, exit code 1") {
    PoolError e("127.0.0.1:7000", "cannot connect: Connection refused");
    CHECK(std::string(e.what()) == "127.0.0.1:7000: cannot connect: Connection refused");
    CHECK(e.node() == "127.0.0.1:7000");
    CHECK(e.code() == snap::ExitCode::runtime);
}

TEST_CASE("redirections: MOVED and ASK replies") {
    Endpoint from{"10.0.0.9", 7000};
    auto m = parse_redirect("MOVED 3999 127.0.0.1:6381", from);
    REQUIRE(m);
    CHECK_FALSE(m->ask);
    CHECK(m->slot == 3999);
    CHECK(m->to == Endpoint{"127.0.0.1", 6381});
    auto a = parse_redirect("ASK 0 ::1:7001", from);
    REQUIRE(a);
    CHECK(a->ask);
    CHECK(a->slot == 0);
    CHECK(a->to == Endpoint{"::1", 7001});
    CHECK(parse_redirect("ASK 16383 [fe80::1]:7001", from)->to == Endpoint{"fe80::1", 7001});
    CHECK(parse_redirect("MOVED 12 :7002", from)->to == Endpoint{"10.0.0.9", 7002});  // unknown endpoint
    CHECK(parse_redirect("MOVED 12 pool-3.example:7002", from)->to == Endpoint{"pool-3.example", 7002});
    CHECK_FALSE(parse_redirect("MOVED 16384 h:1", from));
    CHECK_FALSE(parse_redirect("MOVED x h:1", from));
    CHECK_FALSE(parse_redirect("MOVED 1 h:0", from));
    CHECK_FALSE(parse_redirect("MOVED 1 h", from));
    CHECK_FALSE(parse_redirect("MOVED 1", from));
    CHECK_FALSE(parse_redirect("MOVEDX 1 h:1", from));
    CHECK_FALSE(parse_redirect("TRYAGAIN Multiple keys request during rehashing of slot", from));
    CHECK_FALSE(parse_redirect("ERR unknown command", from));
}

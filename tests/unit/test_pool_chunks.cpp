// SPDX-License-Identifier: Apache-2.0
// Pool chunks without a server (common/pool/chunk.hpp, store.hpp): names, the image-aligned
// cut, the value format and its checks, id lists; and a manifest with pool parts round-trips
// through the placed artifact's PCHK chunk and refuses inconsistent chunk tables.
#include "common/error.hpp"
#include "common/placed.hpp"
#include "common/pool/chunk.hpp"
#include "common/pool/store.hpp"

#include <doctest/doctest.h>
#include <zstd.h>

#include <cstring>
#include <filesystem>

using namespace snap;

TEST_CASE("pool chunk names are XXH3-128, printed as xxhsum -H2 does") {
    // xxhsum -H2 of the empty input prints 99aa06d3014798d86001c324468d497f.
    pool::ChunkId e = pool::chunk_id("", 0);
    CHECK(pool::to_hex(e) == "99aa06d3014798d86001c324468d497f");
    pool::ChunkId back;
    REQUIRE(pool::from_hex(pool::to_hex(e), back));
    CHECK(back == e);
    CHECK_FALSE(pool::from_hex("99AA06D3014798D86001C324468D497F", back));  // lower case only
    CHECK_FALSE(pool::from_hex("abc", back));
    auto ids = std::vector<pool::ChunkId>{e, {1, 2}, {~0ull, 7}};
    CHECK(pool::unpack_ids(pool::pack_ids(ids)) == ids);
    CHECK(pool::valid_name("hello-1.v2_x"));
    CHECK_FALSE(pool::valid_name("a b"));
    CHECK_FALSE(pool::valid_name(""));
    CHECK_FALSE(pool::valid_name("x/y"));
}

TEST_CASE("the cut follows the image: extent ends and chunk-aligned image offsets") {
    SplitPlan p;
    p.image = {64 * 4096, 4096, 0};
    // COLD extents in data order: image pages [2,9) then [30,34); RO [12,14)
    p.extents = {{2, 7, PageClass::cold, 0}, {30, 4, PageClass::cold, 7}, {12, 2, PageClass::ro, 0}};
    // 16 KiB chunks = 4 pages, aligned to image pages 0, 4, 8, ...
    CHECK(pool::cut_part(p, PageClass::cold, 16384) == std::vector<uint32_t>{2 * 4096, 4 * 4096, 1 * 4096, 2 * 4096, 2 * 4096});
    CHECK(pool::cut_part(p, PageClass::ro, 16384) == std::vector<uint32_t>{2 * 4096});
    CHECK(pool::cut_part(p, PageClass::cold, 4096).size() == 11);
    // The same stretch of the image makes the same chunks wherever the part holds it.
    SplitPlan q = p;
    q.extents = {{30, 4, PageClass::cold, 0}, {2, 7, PageClass::cold, 4}};
    auto a = pool::cut_part(p, PageClass::cold, 16384), b = pool::cut_part(q, PageClass::cold, 16384);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    CHECK(a == b);
}

TEST_CASE("chunk values: zstd when it pays, raw otherwise; every fault in a value is named") {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_DCtx* d = ZSTD_createDCtx();
    std::vector<std::byte> text(16384), noise(4096), out(16384);
    for (size_t i = 0; i < text.size(); ++i) text[i] = std::byte("snapkit pages "[i % 14]);
    uint64_t x = 88172645463325252ull;
    for (auto& b : noise) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b = std::byte(x);
    }
    pool::ChunkId tid = pool::chunk_id(text.data(), text.size()), nid = pool::chunk_id(noise.data(), noise.size());
    std::string tv = pool::encode_value(text.data(), 16384, 1, c), nv = pool::encode_value(noise.data(), 4096, 1, c);
    CHECK(tv[3] == 1);
    CHECK(tv.size() < 2000);
    CHECK(nv[3] == 0);
    CHECK(nv.size() == 4096 + pool::kValueHeaderBytes);
    CHECK(pool::decode_value(tv, tid, 16384, out.data(), d).empty());
    CHECK(std::memcmp(out.data(), text.data(), text.size()) == 0);
    CHECK(pool::decode_value(nv, nid, 4096, out.data(), d).empty());
    CHECK(pool::decode_value(nv, tid, 4096, out.data(), d).find("hash mismatch") != std::string::npos);
    CHECK(pool::decode_value(tv, tid, 8192, out.data(), d).find("manifest says") != std::string::npos);
    std::string bad = nv;
    bad[100] ^= 1;
    CHECK(pool::decode_value(bad, nid, 4096, out.data(), d).find("hash mismatch") != std::string::npos);
    bad = tv;
    bad[20] ^= 0x55;
    CHECK_FALSE(pool::decode_value(bad, tid, 16384, out.data(), d).empty());
    CHECK(pool::decode_value("XYZ", tid, 16384, out.data(), d) == "not a snapkit chunk value");
    bad = nv;
    bad[3] = 9;
    CHECK(pool::decode_value(bad, nid, 4096, out.data(), d).find("codec") != std::string::npos);
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
}

TEST_CASE("a manifest with a pool part round-trips its chunk table; inconsistent tables are refused") {
    SplitPlan p;
    p.image = {8 * 4096, 4096, 0x77};
    p.runs = {{0, 4, PageClass::zero}, {4, 4, PageClass::cold}};
    p.extents = {{4, 4, PageClass::cold, 0}};
    p.pages_per_class = {4, 0, 0, 4};
    placed::Manifest m;
    tier::TierSpec t;
    t.kind = tier::TierKind::pool;
    t.location = "redis://127.0.0.1:6379/ns";
    m.tiers = {t};
    placed::Part part;
    part.cls = PageClass::cold;
    part.compression = placed::Compression::chunks;
    part.frame_bytes = 8192;
    part.path = t.location + "#00000000000000aa.cold";
    part.raw_bytes = 4 * 4096;
    part.digest = 0xaa;
    part.chunks = {{{1, 2}, 8192, 900}, {{3, 4}, 8192, 8200}};
    part.stored_bytes = 9100;
    m.parts = {part};
    const std::string dir = std::filesystem::temp_directory_path() / ("snap-pchk-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    placed::write_manifest(p, m, 1, dir + "/ok.placed");
    placed::PlacedReader r(dir + "/ok.placed");
    REQUIRE(r.parts().size() == 1);
    CHECK(r.parts()[0] == part);
    CHECK(placed::pool_url_of(r.parts()[0]) == t.location);
    CHECK(r.tiers()[0].name() == t.location);
    auto bad = [&](placed::Part q, const std::string& why) {
        placed::Manifest mm = m;
        mm.parts = {q};
        placed::write_manifest(p, mm, 1, dir + "/bad.placed");
        try {
            placed::PlacedReader rr(dir + "/bad.placed");
            FAIL("accepted: " << why);
        } catch (const BadInput& e) {
            CHECK_MESSAGE(std::string(e.what()).find(why) != std::string::npos, e.what());
        }
    };
    placed::Part q = part;
    q.chunks[1].raw_bytes = 4096;
    bad(q, "pool chunks add up to");
    q = part;
    q.chunks[0].raw_bytes = 100;
    bad(q, "invalid sizes");
    q = part;
    q.path = "/etc/passwd";
    bad(q, "pool's URL");
    q = part;
    q.compression = placed::Compression::none;
    q.chunks.clear();
    q.frame_bytes = 0;
    q.stored_bytes = q.raw_bytes;
    bad(q, "pool tiers hold chunked parts");
    std::filesystem::remove_all(dir);
}

// SPDX-License-Identifier: Apache-2.0
// Pool chunks: XXH3-128 names, the image-aligned cut, and the stored value format.
#include "chunk.hpp"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace snap::pool {

ChunkId chunk_id(const void* data, size_t bytes) noexcept {
    XXH128_hash_t h = XXH3_128bits(data, bytes);
    return {h.high64, h.low64};
}

std::string to_hex(const ChunkId& id) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(id.hi), static_cast<unsigned long long>(id.lo));
    return buf;
}

bool from_hex(std::string_view t, ChunkId& id) {
    if (t.size() != 32) return false;
    uint64_t v[2] = {0, 0};
    for (size_t i = 0; i < 32; ++i) {
        char c = t[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return false;
        v[i / 16] = (v[i / 16] << 4) | static_cast<uint64_t>(d);
    }
    id = {v[0], v[1]};
    return true;
}

std::vector<uint32_t> cut_part(const SplitPlan& plan, PageClass cls, uint32_t chunk_bytes) {
    const uint64_t ps = plan.image.page_size;
    const uint64_t per = std::max<uint64_t>(chunk_bytes / ps, 1);
    std::vector<const Extent*> ext;
    for (auto& e : plan.extents)
        if (e.cls == cls) ext.push_back(&e);
    std::sort(ext.begin(), ext.end(), [](const Extent* a, const Extent* b) { return a->data_page < b->data_page; });
    std::vector<uint32_t> out;
    for (auto* e : ext) {
        uint64_t p = e->image_page, end = e->image_page + e->pages;
        while (p < end) {
            uint64_t next = std::min(end, (p / per + 1) * per);
            out.push_back(static_cast<uint32_t>((next - p) * ps));
            p = next;
        }
    }
    return out;
}

namespace {
void put_u32le(char* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t get_u32le(const char* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}
}  // namespace

std::string encode_value(const std::byte* raw, uint32_t raw_bytes, int zstd_level, void* cctx) {
    std::string v(kValueHeaderBytes + ZSTD_compressBound(raw_bytes), '\0');
    std::memcpy(v.data(), "SKC", 3);
    put_u32le(v.data() + 4, raw_bytes);
    size_t c = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx), v.data() + kValueHeaderBytes,
                                 v.size() - kValueHeaderBytes, raw, raw_bytes, zstd_level);
    if (!ZSTD_isError(c) && c <= raw_bytes - raw_bytes / 8) {
        v[3] = 1;
        v.resize(kValueHeaderBytes + c);
        return v;
    }
    v[3] = 0;
    v.resize(kValueHeaderBytes + raw_bytes);
    std::memcpy(v.data() + kValueHeaderBytes, raw, raw_bytes);
    return v;
}

std::string decode_value(std::string_view value, const ChunkId& id, uint32_t raw_bytes, std::byte* dst, void* dctx) {
    if (value.size() < kValueHeaderBytes || std::memcmp(value.data(), "SKC", 3) != 0) return "not a snapkit chunk value";
    const uint8_t codec = static_cast<uint8_t>(value[3]);
    const uint32_t len = get_u32le(value.data() + 4);
    if (len != raw_bytes)
        return "holds " + std::to_string(len) + " bytes, the manifest says " + std::to_string(raw_bytes);
    std::string_view body = value.substr(kValueHeaderBytes);
    if (codec == 0) {
        if (body.size() != raw_bytes) return "raw value of " + std::to_string(body.size()) + " bytes";
        std::memcpy(dst, body.data(), raw_bytes);
    } else if (codec == 1) {
        size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx), dst, raw_bytes, body.data(), body.size());
        if (ZSTD_isError(n)) return std::string("zstd: ") + ZSTD_getErrorName(n);
        if (n != raw_bytes) return "decompresses to " + std::to_string(n) + " bytes";
    } else {
        return "unknown codec " + std::to_string(codec);
    }
    ChunkId got = chunk_id(dst, raw_bytes);
    if (!(got == id)) return "content hash mismatch (its bytes hash to " + to_hex(got) + ")";
    return {};
}

}  // namespace snap::pool

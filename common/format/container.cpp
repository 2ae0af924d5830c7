// SPDX-License-Identifier: Apache-2.0
#include "container.hpp"

#include "../error.hpp"
#include "../hash.hpp"

#include <algorithm>
#include <cstring>

namespace snap::format {

std::string_view kind_name(Kind k) {
    switch (k) {
        case Kind::loadset: return "loading set";
        case Kind::split: return "split";
        case Kind::placed: return "placed";
    }
    return "unknown";
}

std::string chunk_type_name(const ChunkType& t) {
    std::string s;
    for (char c : t) s += (c >= 0x20 && c < 0x7f) ? c : '?';
    return s;
}

void put_u16(std::vector<std::byte>& out, uint16_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
void put_u32(std::vector<std::byte>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
void put_u64(std::vector<std::byte>& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
uint16_t get_u16(const std::byte* p) {
    return static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) | (std::to_integer<uint16_t>(p[1]) << 8));
}
uint32_t get_u32(const std::byte* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<uint32_t>(p[i]);
    return v;
}
uint64_t get_u64(const std::byte* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
    return v;
}

static void set_u16(std::byte* p, uint16_t v) { for (int i = 0; i < 2; ++i) p[i] = static_cast<std::byte>(v >> (8 * i)); }
static void set_u32(std::byte* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i)); }
static void set_u64(std::byte* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i)); }

std::array<std::byte, kHeaderBytes> encode_header(const Header& h) {
    std::array<std::byte, kHeaderBytes> b{};
    std::memcpy(b.data(), kMagic.data(), 8);
    set_u32(&b[8], static_cast<uint32_t>(h.kind));
    set_u16(&b[12], h.version_major);
    set_u16(&b[14], h.version_minor);
    set_u32(&b[16], h.required_flags);
    set_u32(&b[20], h.optional_flags);
    set_u32(&b[24], h.page_size);
    set_u32(&b[28], h.chunk_count);
    set_u64(&b[32], h.parent_digest);
    set_u64(&b[40], h.file_size);
    set_u64(&b[48], 0);
    set_u64(&b[56], hash::xxh3(b.data(), 56));
    return b;
}

Header decode_header(std::span<const std::byte> b, const std::string& name) {
    if (b.size() < 8 || std::memcmp(b.data(), kMagic.data(), 8) != 0) {
        if (b.size() < 8 && (b.empty() || std::memcmp(b.data(), kMagic.data(), b.size()) == 0))
            throw BadInput(name, "truncated: " + std::to_string(b.size()) + " bytes, no complete header");
        throw BadInput(name, "not a snapkit artifact (bad magic)");
    }
    if (b.size() < kHeaderBytes) throw BadInput(name, "truncated: " + std::to_string(b.size()) + " bytes, no complete header");
    uint64_t stored = get_u64(&b[56]);
    uint64_t computed = hash::xxh3(b.data(), 56);
    if (stored != computed)
        throw BadInput(name, "header checksum mismatch (stored " + hash::to_hex(stored) + ", computed " +
                                 hash::to_hex(computed) + ")");
    Header h;
    uint32_t kind = get_u32(&b[8]);
    if (kind < 1 || kind > 3) throw BadInput(name, "unknown artifact kind " + std::to_string(kind));
    h.kind = static_cast<Kind>(kind);
    h.version_major = get_u16(&b[12]);
    h.version_minor = get_u16(&b[14]);
    if (h.version_major != kVersionMajor)
        throw BadInput(name, "format version " + std::to_string(h.version_major) + "." + std::to_string(h.version_minor) +
                                 " is not supported (this build reads " + std::to_string(kVersionMajor) + ".x)");
    h.required_flags = get_u32(&b[16]);
    h.optional_flags = get_u32(&b[20]);
    h.page_size = get_u32(&b[24]);
    h.chunk_count = get_u32(&b[28]);
    h.parent_digest = get_u64(&b[32]);
    h.file_size = get_u64(&b[40]);
    if (get_u64(&b[48]) != 0) throw BadInput(name, "reserved header field is not zero");
    if (h.page_size < 4096 || (h.page_size & (h.page_size - 1)) || h.page_size > (1u << 30))
        throw BadInput(name, "invalid page size " + std::to_string(h.page_size));
    return h;
}

Kind Artifact::peek_kind(const file::InputFile& f) { return decode_header(f.bytes(), f.display_name()).kind; }

void Artifact::bad(const std::string& why) const { throw BadInput(name_, why); }

Artifact::Artifact(const std::string& path, Kind expected, uint32_t known_required_flags,
                   std::vector<ChunkType> known_chunks)
    : Artifact(file::InputFile(path, file::InputFile::Expect::artifact), expected, known_required_flags, std::move(known_chunks)) {}

Artifact::Artifact(file::InputFile file, Kind expected, uint32_t known_required_flags, std::vector<ChunkType> known_chunks)
    : file_(std::move(file)), name_(file_.display_name()) {
    auto all = file_.bytes();
    header_ = decode_header(all, name_);
    if (header_.kind != expected)
        bad("is a " + std::string(kind_name(header_.kind)) + " artifact, expected a " + std::string(kind_name(expected)));
    if (header_.required_flags & ~known_required_flags)
        bad("unknown required flags 0x" + hash::to_hex(header_.required_flags & ~known_required_flags).substr(8));
    if (header_.file_size != all.size())
        bad("truncated or extended: header says " + std::to_string(header_.file_size) + " bytes, file has " +
            std::to_string(all.size()));
    uint64_t table_end = kHeaderBytes + uint64_t{header_.chunk_count} * kChunkEntryBytes;
    if (table_end + kTrailerBytes > all.size())
        bad("chunk table (" + std::to_string(header_.chunk_count) + " chunks) runs past the end of the file");
    const std::byte* trailer = all.data() + all.size() - kTrailerBytes;
    if (std::memcmp(trailer, kTrailerMagic.data(), 8) != 0) bad("bad trailer magic (truncated?)");
    digest_ = hash::xxh3(all.data(), table_end);
    uint64_t stored = get_u64(trailer + 8);
    if (stored != digest_)
        bad("checksum mismatch over header and chunk table (stored " + hash::to_hex(stored) + ", computed " +
            hash::to_hex(digest_) + ")");
    uint64_t data_end = all.size() - kTrailerBytes;
    std::vector<std::pair<uint64_t, uint64_t>> extents;  // every chunk, known or not: [offset, end)
    for (uint32_t i = 0; i < header_.chunk_count; ++i) {
        const std::byte* e = all.data() + kHeaderBytes + uint64_t{i} * kChunkEntryBytes;
        ChunkEntry c;
        std::memcpy(c.type.data(), e, 4);
        c.flags = get_u32(e + 4);
        c.offset = get_u64(e + 8);
        c.length = get_u64(e + 16);
        c.xxh3 = get_u64(e + 24);
        std::string tn = chunk_type_name(c.type);
        if (c.flags & ~kChunkKnownFlags) bad("chunk " + tn + ": unknown chunk flags");
        if (c.offset < table_end || c.offset > data_end || c.length > data_end - c.offset)
            bad("chunk " + tn + " (offset " + std::to_string(c.offset) + ", " + std::to_string(c.length) +
                " bytes) lies outside the file");
        if ((c.flags & kChunkPageAligned) && c.offset % header_.page_size)
            bad("chunk " + tn + " is not page-aligned");
        extents.push_back({c.offset, c.offset + c.length});
        bool known = std::find(known_chunks.begin(), known_chunks.end(), c.type) != known_chunks.end();
        if (!known) {
            if (c.flags & kChunkRequired) bad("unknown required chunk " + tn);
            continue;  // unknown optional chunk: skip
        }
        chunks_.push_back(c);
    }
    // Chunks must not overlap, and the padding between them must be zero: no byte of the file
    // escapes a checksum.
    std::sort(extents.begin(), extents.end());
    uint64_t at = table_end;
    for (auto& [begin, end] : extents) {
        if (begin < at) bad("chunks overlap");
        for (uint64_t i = at; i < begin; ++i)
            if (all[i] != std::byte{0}) bad("non-zero padding at offset " + std::to_string(i));
        at = end;
    }
    for (uint64_t i = at; i < data_end; ++i)
        if (all[i] != std::byte{0}) bad("non-zero padding at offset " + std::to_string(i));
}

const ChunkEntry* Artifact::find(const ChunkType& type) const {
    for (auto& c : chunks_)
        if (c.type == type) return &c;
    return nullptr;
}

const ChunkEntry& Artifact::require(const ChunkType& type) const {
    if (auto* c = find(type)) return *c;
    bad("missing chunk " + chunk_type_name(type));
}

std::span<const std::byte> Artifact::bytes(const ChunkEntry& c) const {
    return file_.bytes().subspan(c.offset, c.length);
}

void Artifact::verify_chunk(const ChunkEntry& c) const {
    auto b = bytes(c);
    uint64_t h = hash::xxh3(b.data(), b.size());
    if (h != c.xxh3)
        bad("chunk " + chunk_type_name(c.type) + ": checksum mismatch (stored " + hash::to_hex(c.xxh3) +
            ", computed " + hash::to_hex(h) + ")");
}

std::span<const std::byte> Artifact::verified_bytes(const ChunkEntry& c) const {
    verify_chunk(c);
    return bytes(c);
}

void Artifact::verify_all() const {
    for (auto& c : chunks_) verify_chunk(c);
}

nlohmann::json parse_json_chunk(const Artifact& a, std::span<const std::byte> bytes, const std::string& chunk) {
    bool too_deep = false;
    auto bound = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > kMaxJsonDepth) too_deep = true;
        return !too_deep;  // false discards the value; parsing goes on without building it
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()),
                                  reinterpret_cast<const char*>(bytes.data()) + bytes.size(), bound);
    } catch (const std::exception&) {
        a.bad("chunk " + chunk + " is not valid JSON");
    }
    if (too_deep) a.bad("chunk " + chunk + " nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return j;
}

ArtifactWriter::ArtifactWriter(Kind kind, uint32_t page_size, uint64_t parent_digest) {
    header_.kind = kind;
    header_.page_size = page_size;
    header_.parent_digest = parent_digest;
}

void ArtifactWriter::set_flags(uint32_t required, uint32_t optional) {
    header_.required_flags = required;
    header_.optional_flags = optional;
}

void ArtifactWriter::add_chunk(const ChunkType& type, std::vector<std::byte> data, uint32_t flags) {
    Pending p;
    p.entry.type = type;
    p.entry.flags = flags;
    p.entry.length = data.size();
    p.data = std::move(data);
    pending_.push_back(std::move(p));
}

void ArtifactWriter::add_chunk(const ChunkType& type, std::string_view text, uint32_t flags) {
    std::vector<std::byte> d(text.size());
    std::memcpy(d.data(), text.data(), text.size());
    add_chunk(type, std::move(d), flags);
}

void ArtifactWriter::add_chunk(const ChunkType& type, uint64_t length, Producer producer, uint32_t flags) {
    Pending p;
    p.entry.type = type;
    p.entry.flags = flags;
    p.entry.length = length;
    p.producer = std::move(producer);
    pending_.push_back(std::move(p));
}

void ArtifactWriter::add_chunk(const ChunkType& type, uint64_t length, DirectChunk chunk, uint32_t flags) {
    Pending p;
    p.entry.type = type;
    p.entry.flags = flags;
    p.entry.length = length;
    p.direct = std::move(chunk);
    pending_.push_back(std::move(p));
}

uint64_t ArtifactWriter::finish(file::AtomicOutput& out) {
    header_.chunk_count = static_cast<uint32_t>(pending_.size());
    uint64_t off = kHeaderBytes + pending_.size() * kChunkEntryBytes;
    for (auto& p : pending_) {
        uint64_t align = (p.entry.flags & kChunkPageAligned) ? header_.page_size : 8;
        off = (off + align - 1) / align * align;
        p.entry.offset = off;
        off += p.entry.length;
    }
    off = (off + 7) / 8 * 8;
    header_.file_size = off + kTrailerBytes;

    // Placeholder header and table; the real ones are written once checksums are known.
    out.pad_to(kHeaderBytes + pending_.size() * kChunkEntryBytes);
    for (auto& p : pending_) {
        out.pad_to(p.entry.offset);
        if (p.direct.write) {
            const uint64_t at = out.offset();
            p.direct.write(out);
            if (out.offset() - at != p.entry.length)
                throw Error("internal: chunk " + chunk_type_name(p.entry.type) + " wrote " + std::to_string(out.offset() - at) +
                            " bytes, declared " + std::to_string(p.entry.length));
            p.entry.xxh3 = p.direct.checksum();
            p.direct = {};
            continue;
        }
        hash::Xxh3Stream h;
        uint64_t written = 0;
        auto emit = [&](const void* d, size_t n) {
            h.update(d, n);
            out.write(d, n);
            written += n;
        };
        if (p.producer) p.producer(emit);
        else emit(p.data.data(), p.data.size());
        if (written != p.entry.length)
            throw Error("internal: chunk " + chunk_type_name(p.entry.type) + " produced " + std::to_string(written) +
                        " bytes, declared " + std::to_string(p.entry.length));
        p.entry.xxh3 = h.digest();
        p.data.clear();
        p.data.shrink_to_fit();
    }
    out.pad_to(off);

    std::vector<std::byte> head(kHeaderBytes + pending_.size() * kChunkEntryBytes);
    auto hb = encode_header(header_);
    std::memcpy(head.data(), hb.data(), kHeaderBytes);
    for (size_t i = 0; i < pending_.size(); ++i) {
        std::byte* e = head.data() + kHeaderBytes + i * kChunkEntryBytes;
        auto& c = pending_[i].entry;
        std::memcpy(e, c.type.data(), 4);
        set_u32(e + 4, c.flags);
        set_u64(e + 8, c.offset);
        set_u64(e + 16, c.length);
        set_u64(e + 24, c.xxh3);
    }
    out.pwrite(head.data(), head.size(), 0);
    uint64_t digest = hash::xxh3(head.data(), head.size());
    std::byte trailer[kTrailerBytes];
    std::memcpy(trailer, kTrailerMagic.data(), 8);
    set_u64(trailer + 8, digest);
    out.write(trailer, kTrailerBytes);
    pending_.clear();
    return digest;
}

}  // namespace snap::format

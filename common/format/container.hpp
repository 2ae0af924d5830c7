// SPDX-License-Identifier: Apache-2.0
// The artifact container shared by every snapkit artifact (man/snapkit-formats.5 is the
// normative byte-level description):
//
//   header (64 bytes) | chunk table (32 bytes per chunk) | chunks … | trailer (16 bytes)
//
// Every integer is little-endian. The header carries magic, kind, version, flags, page size
// and its own XXH3-64; each table entry carries its chunk's XXH3-64; the trailer carries the
// artifact digest, an XXH3-64 over header and table (which commit to every chunk's checksum).
// Readers check magic, version, flags, bounds and checksums before trusting a byte.
#pragma once
#include "../file.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snap::format {

enum class Kind : uint32_t { loadset = 1, split = 2, placed = 3 };
std::string_view kind_name(Kind k);

constexpr std::array<char, 8> kMagic = {'S', 'N', 'A', 'P', 'K', 'I', 'T', '\0'};
constexpr std::array<char, 8> kTrailerMagic = {'S', 'N', 'A', 'P', 'E', 'N', 'D', '\0'};
constexpr uint16_t kVersionMajor = 1;
constexpr uint16_t kVersionMinor = 0;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kChunkEntryBytes = 32;
constexpr size_t kTrailerBytes = 16;

// Chunk flags.
constexpr uint32_t kChunkRequired = 1u << 0;     // a reader that does not know the type must refuse
constexpr uint32_t kChunkPageAligned = 1u << 1;  // offset is a multiple of the page size
constexpr uint32_t kChunkKnownFlags = kChunkRequired | kChunkPageAligned;

using ChunkType = std::array<char, 4>;
constexpr ChunkType chunk_type(const char (&s)[5]) { return {s[0], s[1], s[2], s[3]}; }
std::string chunk_type_name(const ChunkType& t);

struct ChunkEntry {
    ChunkType type{};
    uint32_t flags = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t xxh3 = 0;
};

struct Header {
    Kind kind = Kind::loadset;
    uint16_t version_major = kVersionMajor;
    uint16_t version_minor = kVersionMinor;
    uint32_t required_flags = 0;
    uint32_t optional_flags = 0;
    uint32_t page_size = 4096;
    uint32_t chunk_count = 0;
    uint64_t parent_digest = 0;
    uint64_t file_size = 0;
};

// Encode/decode a header; decode validates magic, checksum, version and reserved bytes and
// throws BadInput(name, why).
std::array<std::byte, kHeaderBytes> encode_header(const Header& h);
Header decode_header(std::span<const std::byte> bytes, const std::string& name);

// A parsed, bounds-checked artifact over an input file. Chunk contents are verified against
// their checksum on request (verify_chunk / verify_all), so that a reader of a multi-GiB
// split need not hash page data it does not touch.
class Artifact {
public:
    // known_required_flags: the required header flags this reader understands.
    // known_chunks: chunk types this reader understands; an unknown required chunk is refused.
    Artifact(const std::string& path, Kind expected, uint32_t known_required_flags,
             std::vector<ChunkType> known_chunks);
    // The same over a file already read (a pipe can be read only once).
    Artifact(file::InputFile file, Kind expected, uint32_t known_required_flags, std::vector<ChunkType> known_chunks);
    // The kind of an opened file, from its checked header; the kind's own reader re-checks.
    static Kind peek_kind(const file::InputFile& file);

    const std::string& name() const { return name_; }
    const Header& header() const { return header_; }
    uint64_t digest() const { return digest_; }
    const std::vector<ChunkEntry>& chunks() const { return chunks_; }
    const ChunkEntry* find(const ChunkType& type) const;  // first of that type, or null
    const ChunkEntry& require(const ChunkType& type) const;  // throws BadInput if absent
    std::span<const std::byte> bytes(const ChunkEntry& c) const;
    // bytes() after checking the chunk's checksum.
    std::span<const std::byte> verified_bytes(const ChunkEntry& c) const;
    void verify_chunk(const ChunkEntry& c) const;
    void verify_all() const;
    const file::InputFile& file() const { return file_; }
    [[noreturn]] void bad(const std::string& why) const;

private:
    file::InputFile file_;
    std::string name_;
    Header header_;
    std::vector<ChunkEntry> chunks_;
    uint64_t digest_ = 0;
};

// A chunk whose owner appends its bytes to the output itself (gather writes straight from a
// mapping) and computes their XXH3-64 itself (perhaps on another thread, over the same bytes):
// write(out) appends exactly the declared length; checksum() is called after it.
struct DirectChunk {
    std::function<void(file::AtomicOutput&)> write;
    std::function<uint64_t()> checksum;
};

// Streams an artifact into an AtomicOutput. Chunks are declared first (with their exact
// length), then written in order by finish(); checksums are computed while writing.
class ArtifactWriter {
public:
    using Producer = std::function<void(const std::function<void(const void*, size_t)>& emit)>;

    ArtifactWriter(Kind kind, uint32_t page_size, uint64_t parent_digest);
    void set_flags(uint32_t required, uint32_t optional);
    void add_chunk(const ChunkType& type, std::vector<std::byte> data, uint32_t flags = kChunkRequired);
    void add_chunk(const ChunkType& type, std::string_view text, uint32_t flags = kChunkRequired);
    // A chunk produced by a callback that must emit exactly `length` bytes.
    void add_chunk(const ChunkType& type, uint64_t length, Producer producer, uint32_t flags);
    // A chunk its owner writes and checksums itself (see DirectChunk).
    void add_chunk(const ChunkType& type, uint64_t length, DirectChunk chunk, uint32_t flags);
    // Writes everything and returns the artifact digest. Does not commit the output.
    uint64_t finish(file::AtomicOutput& out);

private:
    struct Pending {
        ChunkEntry entry;
        std::vector<std::byte> data;
        Producer producer;
        DirectChunk direct;
    };
    Header header_;
    std::vector<Pending> pending_;
};

// A JSON chunk (META, COST): parsed with a nesting bound (kMaxJsonDepth) so that a chunk of
// brackets cannot exhaust the stack of whoever prints it later. Throws BadInput naming the
// artifact and the chunk.
constexpr int kMaxJsonDepth = 64;
nlohmann::json parse_json_chunk(const Artifact& a, std::span<const std::byte> bytes, const std::string& chunk);

// Little-endian helpers for chunk encoders.
void put_u16(std::vector<std::byte>& out, uint16_t v);
void put_u32(std::vector<std::byte>& out, uint32_t v);
void put_u64(std::vector<std::byte>& out, uint64_t v);
uint16_t get_u16(const std::byte* p);
uint32_t get_u32(const std::byte* p);
uint64_t get_u64(const std::byte* p);

}  // namespace snap::format

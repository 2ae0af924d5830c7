// SPDX-License-Identifier: Apache-2.0
// The placed artifact: manifest encode/decode, part files (write, check, read), materialize,
// and the place() pipeline behind snap-place.
#include "placed.hpp"

#include "cli.hpp"
#include "error.hpp"
#include "file.hpp"
#include "hash.hpp"
#include "verified.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <climits>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

namespace snap::placed {

using namespace format;

namespace {
constexpr ChunkType kTier = chunk_type("TIER");
constexpr ChunkType kPart = chunk_type("PART");
constexpr ChunkType kSeek = chunk_type("SEEK");
constexpr ChunkType kCost = chunk_type("COST");
constexpr ChunkType kLayout = chunk_type("LAYO");  // optional: image-order layout files of parts
constexpr ChunkType kPoolChunks = chunk_type("PCHK");  // pool parts' chunks, in part order
constexpr size_t kTierFixed = 24, kPartFixed = 64, kFrameBytes = 16, kPoolChunkBytes = 24;
constexpr size_t kIoBytes = 4u << 20;
constexpr uint64_t kLeaseMs = 30 * 60 * 1000;  // a placement renews it after every batch

void put_padded(std::vector<std::byte>& b, const std::string& s) {
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    while (b.size() % 8) b.push_back(std::byte{0});
}

// Compressed bytes depend on frame size and level: both are in the name, so that two
// manifests placed with different settings never share (and overwrite) one file.
std::string part_suffix(PageClass c, Compression comp, uint32_t frame_bytes, int level) {
    std::string s = std::string(".") + class_name(c);
    if (comp == Compression::zstd)
        s += ".f" + std::to_string(frame_bytes / 1024) + "k-z" + std::to_string(level) + ".zst";
    return s;
}

const ChunkType& split_data_chunk(PageClass c) {
    static const ChunkType rw = chunk_type("PGRW"), ro = chunk_type("PGRO"), cl = chunk_type("PGCL"), none{};
    switch (c) {
        case PageClass::rw: return rw;
        case PageClass::ro: return ro;
        case PageClass::cold: return cl;
        default: return none;
    }
}

// A read-only mapping of a whole file, or BadInput naming it.
struct MappedFile {
    int fd = -1;
    std::byte* data = nullptr;
    size_t size = 0;
    explicit MappedFile(const std::string& path) {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw BadInput(path, std::string("cannot open part file: ") + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            throw BadInput(path, "part file is not a regular file");
        }
        size = static_cast<size_t>(st.st_size);
        if (size) {
            void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED) {
                int e = errno;
                ::close(fd);
                throw_errno("mmap " + path, e);
            }
            data = static_cast<std::byte*>(p);
        }
    }
    ~MappedFile() {
        if (data) ::munmap(data, size);
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

const char* compression_name(Compression c) {
    return c == Compression::zstd ? "zstd" : c == Compression::chunks ? "chunks" : "none";
}

// ---------------------------------------------------------------------------------------------
// Manifest

PoolUrls resolve_pool_url(const PlacedReader& r, const std::string& override_url, const std::string& option) {
    PoolUrls u;
    for (const auto& p : r.parts()) {
        const std::string url = pool_url_of(p);
        if (url.empty()) continue;
        if (!override_url.empty() && !u.placed.empty() && url != u.placed)
            throw UsageError(option + " " + override_url + ": " + r.name() + " names two pools (" + u.placed + ", " + url + "), " +
                             option + " stands for one");
        u.placed = url;
    }
    u.used = u.placed;
    if (override_url.empty()) return u;
    if (u.placed.empty()) throw UsageError(option + " " + override_url + ": " + r.name() + " has no part in a pool");
    const pool::PoolUrl over = pool::parse_pool_url(override_url), placed_url = pool::parse_pool_url(u.placed);
    if (over.ns != placed_url.ns)
        throw UsageError(option + " " + override_url + ": namespace '" + over.ns + "', but the pool parts of " + r.name() +
                             " are in namespace '" + placed_url.ns + "'",
                         "give the seeds with the artifact's namespace: redis://HOST:PORT[,HOST:PORT...]/" + placed_url.ns);
    u.used = over.text;
    return u;
}

std::string pool_url_of(const Part& part) {
    if (part.compression != Compression::chunks) return {};
    auto hash = part.path.find('#');
    return part.path.substr(0, hash);
}

uint64_t write_manifest(const SplitPlan& plan, const Manifest& m, uint64_t parent_digest, const std::string& path,
                        const std::function<void(uint64_t, const std::string&)>& before_commit, bool* unchanged) {
    ArtifactWriter w(Kind::placed, plan.image.page_size, parent_digest);
    add_plan_chunks(w, plan);
    std::vector<std::byte> b;
    for (auto& t : m.tiers) {
        put_u32(b, static_cast<uint32_t>(t.kind));
        put_u32(b, static_cast<uint32_t>(t.node));
        put_u64(b, t.budget_bytes);
        put_u32(b, static_cast<uint32_t>(t.location.size()));
        put_u32(b, 0);
        put_padded(b, t.location);
    }
    w.add_chunk(kTier, std::move(b));
    b = {};
    std::vector<std::byte> seek, pchk;
    uint32_t frame_no = 0, chunk_no = 0;
    for (auto& p : m.parts) {
        put_u32(b, static_cast<uint32_t>(p.cls));
        put_u32(b, p.tier);
        put_u32(b, static_cast<uint32_t>(p.compression));
        put_u32(b, p.frame_bytes);
        put_u64(b, p.offset);
        put_u64(b, p.stored_bytes);
        put_u64(b, p.raw_bytes);
        put_u64(b, p.digest);
        if (p.compression == Compression::chunks) {
            put_u32(b, chunk_no);
            put_u32(b, static_cast<uint32_t>(p.chunks.size()));
        } else {
            put_u32(b, frame_no);
            put_u32(b, static_cast<uint32_t>(p.frames.size()));
        }
        put_u32(b, static_cast<uint32_t>(p.path.size()));
        put_u32(b, 0);
        put_padded(b, p.path);
        for (auto& f : p.frames) {
            put_u32(seek, f.stored_bytes);
            put_u32(seek, f.raw_bytes);
            put_u64(seek, f.xxh3);
        }
        frame_no += static_cast<uint32_t>(p.frames.size());
        for (auto& c : p.chunks) {
            put_u64(pchk, c.id.hi);
            put_u64(pchk, c.id.lo);
            put_u32(pchk, c.raw_bytes);
            put_u32(pchk, c.stored_bytes);
        }
        chunk_no += static_cast<uint32_t>(p.chunks.size());
    }
    w.add_chunk(kPart, std::move(b));
    w.add_chunk(kSeek, std::move(seek));
    // Required when present: a reader that does not know it cannot find a pool part's bytes.
    if (!pchk.empty()) w.add_chunk(kPoolChunks, std::move(pchk));
    w.add_chunk(kCost, m.cost.dump(), 0);  // optional: restore does not need it
    // Optional: a reader that does not know it restores from the packed parts alone.
    std::vector<std::byte> lay;
    for (auto& p : m.parts) {
        if (p.layout_path.empty()) continue;
        put_u32(lay, static_cast<uint32_t>(p.cls));
        put_u32(lay, static_cast<uint32_t>(p.layout_path.size()));
        put_padded(lay, p.layout_path);
    }
    if (!lay.empty()) w.add_chunk(kLayout, std::move(lay), 0);
    file::AtomicOutput out(path);
    uint64_t d = w.finish(out);
    if (before_commit) {
        std::string bytes(out.offset(), '\0');
        for (size_t at = 0; at < bytes.size();) {
            ssize_t n = ::pread(out.fd(), bytes.data() + at, bytes.size() - at, static_cast<off_t>(at));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw_errno("read back " + path);
            at += static_cast<size_t>(n);
        }
        before_commit(d, bytes);
    }
    const bool same = out.commit();
    if (unchanged) *unchanged = same;
    return d;
}

static std::vector<ChunkType> placed_chunks() {
    auto v = plan_chunk_types();
    v.insert(v.end(), {kTier, kPart, kSeek, kCost, kLayout, kPoolChunks});
    return v;
}

PlacedReader::PlacedReader(const std::string& path) : PlacedReader(file::InputFile(path, file::InputFile::Expect::artifact)) {}

PlacedReader::PlacedReader(file::InputFile file) : artifact_(std::move(file), Kind::placed, 0, placed_chunks()) {
    auto& a = artifact_;
    plan_ = decode_plan_chunks(a);
    const uint32_t ps = plan_.image.page_size;

    auto tb = a.verified_bytes(a.require(kTier));
    for (size_t off = 0; off < tb.size();) {
        std::string at = "tier " + std::to_string(m_.tiers.size());
        if (tb.size() - off < kTierFixed) a.bad(at + ": truncated tier table");
        const std::byte* p = &tb[off];
        tier::TierSpec t;
        uint32_t kind = get_u32(p);
        if (kind < 1 || kind > tier::kTierKinds) a.bad(at + ": unknown tier kind " + std::to_string(kind));
        t.kind = static_cast<tier::TierKind>(kind);
        t.node = static_cast<int32_t>(get_u32(p + 4));
        t.budget_bytes = get_u64(p + 8);
        uint32_t len = get_u32(p + 16);
        if (get_u32(p + 20) != 0) a.bad(at + ": reserved field is not zero");
        if (len > tb.size() - off - kTierFixed) a.bad(at + ": location runs past the chunk");
        t.location.assign(reinterpret_cast<const char*>(p + kTierFixed), len);
        if (t.location.find('\0') != std::string::npos) a.bad(at + ": location holds a NUL byte");
        if (t.kind == tier::TierKind::pool) {
            if (t.location.rfind("redis://", 0) != 0) a.bad(at + ": a pool tier's location is not a redis:// URL");
        } else if (t.location.empty() || t.location[0] != '/') {
            a.bad(at + ": location is not an absolute path");
        }
        if ((t.kind == tier::TierKind::numa) != (t.node >= 0)) a.bad(at + ": node does not match the tier kind");
        off += (kTierFixed + len + 7) / 8 * 8;
        m_.tiers.push_back(std::move(t));
    }

    auto sb = a.verified_bytes(a.require(kSeek));
    if (sb.size() % kFrameBytes) a.bad("chunk SEEK length is not a multiple of 16");
    const uint64_t nframes = sb.size() / kFrameBytes;
    uint64_t frames_used = 0;

    std::span<const std::byte> cb;
    if (auto* c = a.find(kPoolChunks)) cb = a.verified_bytes(*c);
    if (cb.size() % kPoolChunkBytes) a.bad("chunk PCHK length is not a multiple of 24");
    const uint64_t nchunks = cb.size() / kPoolChunkBytes;
    uint64_t chunks_used = 0;

    auto pb = a.verified_bytes(a.require(kPart));
    std::array<bool, kPageClasses> seen{};
    for (size_t off = 0; off < pb.size();) {
        std::string at = "part " + std::to_string(m_.parts.size());
        if (pb.size() - off < kPartFixed) a.bad(at + ": truncated part table");
        const std::byte* p = &pb[off];
        Part part;
        uint32_t cls = get_u32(p);
        if (cls < 1 || cls > 3) a.bad(at + ": invalid class " + std::to_string(cls));
        part.cls = static_cast<PageClass>(cls);
        if (seen[cls]) a.bad(at + ": a second part for class " + class_name(part.cls));
        seen[cls] = true;
        part.tier = get_u32(p + 4);
        if (part.tier >= m_.tiers.size()) a.bad(at + ": tier index out of range");
        uint32_t comp = get_u32(p + 8);
        if (comp > 2) a.bad(at + ": unknown compression " + std::to_string(comp));
        part.compression = static_cast<Compression>(comp);
        part.frame_bytes = get_u32(p + 12);
        part.offset = get_u64(p + 16);
        part.stored_bytes = get_u64(p + 24);
        part.raw_bytes = get_u64(p + 32);
        part.digest = get_u64(p + 40);
        uint32_t first = get_u32(p + 48), count = get_u32(p + 52), len = get_u32(p + 56);
        if (get_u32(p + 60) != 0) a.bad(at + ": reserved field is not zero");
        if (len > pb.size() - off - kPartFixed) a.bad(at + ": path runs past the chunk");
        part.path.assign(reinterpret_cast<const char*>(p + kPartFixed), len);
        const bool in_pool = m_.tiers[part.tier].kind == tier::TierKind::pool;
        if (in_pool != (part.compression == Compression::chunks)) a.bad(at + ": pool tiers hold chunked parts, and only they");
        if (part.path.find('\0') != std::string::npos) a.bad(at + ": path holds a NUL byte");
        if (in_pool) {
            if (part.path.rfind(m_.tiers[part.tier].location + "#", 0) != 0) a.bad(at + ": name is not its pool's URL#…");
        } else if (part.path.empty() || part.path[0] != '/') {
            a.bad(at + ": path is not absolute");
        }
        const uint64_t need = plan_.pages_per_class[cls] * ps;
        if (part.raw_bytes != need)
            a.bad(at + ": holds " + std::to_string(part.raw_bytes) + " bytes, class " + class_name(part.cls) + " needs " +
                  std::to_string(need));
        if (part.offset > UINT64_MAX - part.stored_bytes) a.bad(at + ": offset + length overflows");
        // A table of frames or chunks must add up to the part's sizes.
        auto adds_up = [&](const char* what, uint64_t raw, uint64_t stored) {
            if (raw != part.raw_bytes || stored != part.stored_bytes)
                a.bad(at + ": " + what + " add up to " + std::to_string(raw) + "/" + std::to_string(stored) +
                      " bytes, the part says " + std::to_string(part.raw_bytes) + "/" + std::to_string(part.stored_bytes));
        };
        if (part.compression == Compression::none) {
            if (part.stored_bytes != part.raw_bytes || count != 0 || part.frame_bytes != 0)
                a.bad(at + ": uncompressed part with frames or a stored length unlike its raw length");
            if (part.offset % ps) a.bad(at + ": offset is not page-aligned");
        } else if (part.compression == Compression::chunks) {
            if (part.frame_bytes == 0 || part.frame_bytes % ps || part.frame_bytes > pool::kMaxChunkBytes)
                a.bad(at + ": invalid chunk size " + std::to_string(part.frame_bytes));
            if (first != chunks_used || count > nchunks - chunks_used) a.bad(at + ": pool chunk entries out of range");
            if (part.offset != 0) a.bad(at + ": a pool part has an offset");
            uint64_t raw = 0, stored = 0;
            part.chunks.reserve(count);
            for (uint32_t i = 0; i < count; ++i) {
                const std::byte* c = &cb[(first + i) * kPoolChunkBytes];
                pool::ChunkRef ref{{get_u64(c), get_u64(c + 8)}, get_u32(c + 16), get_u32(c + 20)};
                if (ref.raw_bytes == 0 || ref.raw_bytes % ps || ref.raw_bytes > part.frame_bytes ||
                    ref.stored_bytes <= pool::kValueHeaderBytes)
                    a.bad(at + ": pool chunk " + std::to_string(i) + " has invalid sizes");
                raw += ref.raw_bytes;
                stored += ref.stored_bytes;
                part.chunks.push_back(ref);
            }
            adds_up("pool chunks", raw, stored);
            chunks_used += count;
        } else {
            if (part.frame_bytes == 0 || part.frame_bytes % ps || part.frame_bytes > kMaxFrameBytes)
                a.bad(at + ": invalid frame size " + std::to_string(part.frame_bytes));
            if (first != frames_used || count > nframes - frames_used) a.bad(at + ": seek table entries out of range");
            uint64_t raw = 0, stored = 0;
            for (uint32_t i = 0; i < count; ++i) {
                const std::byte* f = &sb[(first + i) * kFrameBytes];
                Frame fr{get_u32(f), get_u32(f + 4), get_u64(f + 8)};
                bool last = i + 1 == count;
                if (fr.raw_bytes == 0 || fr.raw_bytes > part.frame_bytes || (!last && fr.raw_bytes != part.frame_bytes) ||
                    fr.stored_bytes == 0)
                    a.bad(at + ": frame " + std::to_string(i) + " has invalid sizes");
                raw += fr.raw_bytes;
                stored += fr.stored_bytes;
                part.frames.push_back(fr);
            }
            adds_up("frames", raw, stored);
            frames_used += count;
        }
        off += (kPartFixed + len + 7) / 8 * 8;
        m_.parts.push_back(std::move(part));
    }
    if (frames_used != nframes) a.bad("chunk SEEK has frames no part uses");
    if (chunks_used != nchunks) a.bad("chunk PCHK has chunks no part uses");
    for (int c = 1; c < kPageClasses; ++c)
        if (plan_.pages_per_class[c] && !seen[c])
            a.bad(std::string("no part holds the ") + class_name(static_cast<PageClass>(c)) + " pages");
    if (auto* c = a.find(kLayout)) {
        auto lb = a.verified_bytes(*c);
        for (size_t off = 0; off < lb.size();) {
            if (lb.size() - off < 8) a.bad("chunk LAYO: truncated entry");
            const std::byte* p = &lb[off];
            uint32_t cls = get_u32(p), len = get_u32(p + 4);
            if (len > lb.size() - off - 8) a.bad("chunk LAYO: path runs past the chunk");
            Part* part = nullptr;
            for (auto& q : m_.parts)
                if (static_cast<uint32_t>(q.cls) == cls) part = &q;
            if (!part) a.bad("chunk LAYO: a layout for a class without a part");
            if (!part->layout_path.empty()) a.bad("chunk LAYO: a second layout for class " + std::string(class_name(part->cls)));
            if (part->compression != Compression::none) a.bad("chunk LAYO: a layout for a compressed part");
            part->layout_path.assign(reinterpret_cast<const char*>(p + 8), len);
            if (part->layout_path.empty() || part->layout_path[0] != '/' || part->layout_path.find('\0') != std::string::npos)
                a.bad("chunk LAYO: layout path is not absolute");
            off += (8 + len + 7) / 8 * 8;
        }
    }
    if (auto* c = a.find(kCost)) {
        auto cb = a.verified_bytes(*c);
        m_.cost = parse_json_chunk(a, cb, "COST");
    }
}

const Part* PlacedReader::part(PageClass cls) const {
    for (auto& p : m_.parts)
        if (p.cls == cls) return &p;
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Part files

PartSource::PartSource(const Part& part, const pool::ReadOptions& pool_options) : part_(part) {
    if (part_.compression == Compression::chunks) {
        const std::string url = pool_options.url.empty() ? pool_url_of(part_) : pool_options.url;
        pool_ = std::make_unique<pool::PartReader>(pool::parse_pool_url(url), part_.chunks, pool_options);
        return;
    }
    fd_ = ::open(part_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw BadInput(part_.path, std::string("cannot open part file: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) < 0 || !S_ISREG(st.st_mode)) throw BadInput(part_.path, "part file is not a regular file");
    uint64_t end = part_.offset + part_.stored_bytes;
    if (static_cast<uint64_t>(st.st_size) < end)
        throw BadInput(part_.path, "part file is truncated: " + std::to_string(st.st_size) + " bytes, the manifest needs " +
                                       std::to_string(end));
    map_len_ = static_cast<size_t>(end);
    if (map_len_) {
        void* p = ::mmap(nullptr, map_len_, PROT_READ, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED) throw_errno("mmap " + part_.path);
        map_ = static_cast<std::byte*>(p);
    }
    if (part_.compression == Compression::zstd) {
        uint64_t raw = 0, stored = part_.offset;
        for (auto& f : part_.frames) {
            raw_start_.push_back(raw);
            stored_start_.push_back(stored);
            raw += f.raw_bytes;
            stored += f.stored_bytes;
        }
        dctx_ = ZSTD_createDCtx();
        if (!dctx_) throw std::bad_alloc();
    }
}

PartSource::~PartSource() {
    if (dctx_) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
    if (span_dctx_) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(span_dctx_));
    if (map_) ::munmap(map_, map_len_);
    if (fd_ >= 0) ::close(fd_);
}

std::span<const std::byte> PartSource::mapped() const {
    if (part_.compression != Compression::none || !map_) return {};
    return {map_ + part_.offset, part_.raw_bytes};
}

void PartSource::decode_frame(size_t i, std::byte* dst, void* dctx) const {
    const Frame& f = part_.frames[i];
    size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx), dst, f.raw_bytes, map_ + stored_start_[i], f.stored_bytes);
    if (ZSTD_isError(n))
        throw BadInput(part_.path, "frame " + std::to_string(i) + ": " + ZSTD_getErrorName(n));
    if (n != f.raw_bytes)
        throw BadInput(part_.path, "frame " + std::to_string(i) + " decompresses to " + std::to_string(n) + " bytes, expected " +
                                       std::to_string(f.raw_bytes));
    uint64_t h = hash::xxh3(dst, n);
    if (h != f.xxh3)
        throw BadInput(part_.path, "frame " + std::to_string(i) + ": checksum mismatch (manifest " + hash::to_hex(f.xxh3) +
                                       ", data " + hash::to_hex(h) + ")");
}

void PartSource::load_frame(size_t i) {
    if (frame_index_ == i) return;
    frame_.resize(part_.frame_bytes);
    frame_index_ = SIZE_MAX;  // until the new frame is in
    decode_frame(i, frame_.data(), dctx_);
    frame_index_ = i;
}

void PartSource::read(uint64_t offset, size_t len, std::byte* dst) {
    if (offset > part_.raw_bytes || len > part_.raw_bytes - offset)
        throw Error("internal: read past the end of part " + part_.path);
    if (part_.compression == Compression::none) {
        std::memcpy(dst, map_ + part_.offset + offset, len);
        return;
    }
    if (pool_) {
        pool_->read(offset, len, dst);
        return;
    }
    while (len) {
        size_t i = static_cast<size_t>(offset / part_.frame_bytes);
        load_frame(i);
        uint64_t in = offset - raw_start_[i];
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, part_.frames[i].raw_bytes - in));
        std::memcpy(dst, frame_.data() + in, n);
        dst += n;
        offset += n;
        len -= n;
    }
}

void PartSource::read_all(std::byte* dst) { read_span(0, part_.raw_bytes, dst); }

uint64_t PartSource::unit_start(uint64_t offset) const {
    if (offset >= part_.raw_bytes) return part_.raw_bytes;
    if (pool_) return pool_->chunk_start(offset);
    if (part_.compression == Compression::zstd) return offset / part_.frame_bytes * part_.frame_bytes;
    return offset;
}

uint64_t PartSource::max_unit_bytes() const {
    if (pool_) return pool_->max_chunk_bytes();
    return part_.compression == Compression::zstd ? part_.frame_bytes : 0;
}

void PartSource::read_span(uint64_t offset, uint64_t len, std::byte* dst) {
    if (offset > part_.raw_bytes || len > part_.raw_bytes - offset)
        throw Error("internal: read past the end of part " + part_.path);
    if (unit_start(offset) != offset || unit_start(offset + len) != offset + len)
        throw Error("internal: a bulk read of part " + part_.path + " off its unit boundaries");
    if (pool_) {
        pool_->read_span(offset, len, dst);
        return;
    }
    if (part_.compression == Compression::none) {
        std::memcpy(dst, map_ + part_.offset + offset, len);
        return;
    }
    if (!span_dctx_ && !(span_dctx_ = ZSTD_createDCtx())) throw std::bad_alloc();
    for (uint64_t at = offset; at < offset + len;) {
        const size_t i = static_cast<size_t>(at / part_.frame_bytes);
        decode_frame(i, dst + (at - offset), span_dctx_);
        at += part_.frames[i].raw_bytes;
    }
}

void PartSource::advise_random() const {
    if (fd_ >= 0) (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM);
}

void PartSource::pread(uint64_t offset, size_t len, std::byte* dst) const {
    if (part_.compression != Compression::none || offset > part_.raw_bytes || len > part_.raw_bytes - offset)
        throw Error("internal: pread outside uncompressed part " + part_.path);
    uint64_t at = part_.offset + offset;
    while (len) {
        ssize_t n = ::pread(fd_, dst, len, static_cast<off_t>(at));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read " + part_.path);
        if (n == 0) throw BadInput(part_.path, "part file is truncated");
        dst += n;
        at += static_cast<uint64_t>(n);
        len -= static_cast<size_t>(n);
    }
}

void check_part(const Part& part, const std::function<void(uint64_t)>& progress, const pool::ReadOptions& pool_options) {
    PartSource src(part, pool_options);
    hash::Xxh3Stream h;
    if (part.compression == Compression::none) {
        auto m = src.mapped();
        constexpr size_t kSlice = size_t{64} << 20;  // progress every 64 MiB
        for (size_t at = 0; at < m.size(); at += kSlice) {
            h.update(m.data() + at, std::min(kSlice, m.size() - at));
            if (progress) progress(std::min<uint64_t>(at + kSlice, m.size()));
        }
    } else {
        // Every chunk (against its name) or frame (against its checksum) is checked as it is
        // read; then the part as a whole, in slices of whole units (memory: one slice,
        // whatever the part's size).
        const uint64_t slice = std::max<uint64_t>(uint64_t{64} << 20, src.max_unit_bytes());
        std::unique_ptr<std::byte[]> buf(new std::byte[std::min<uint64_t>(slice, part.raw_bytes)]);
        for (uint64_t off = 0; off < part.raw_bytes;) {
            const uint64_t end = src.unit_start(std::min(part.raw_bytes, off + slice));
            src.read_span(off, end - off, buf.get());
            h.update(buf.get(), end - off);
            off = end;
            if (progress) progress(off);
        }
    }
    uint64_t d = h.digest();
    if (d != part.digest)
        throw BadInput(part.path, "part digest mismatch (manifest " + hash::to_hex(part.digest) + ", file " + hash::to_hex(d) + ")");
}

void check_layout(const Part& part, const SplitPlan& plan) {
    if (part.layout_path.empty()) return;
    MappedFile f(part.layout_path);
    const uint64_t ps = plan.image.page_size;
    if (f.size != plan.image.size_bytes)
        throw BadInput(part.layout_path, "layout file holds " + std::to_string(f.size) + " bytes, the image has " +
                                             std::to_string(plan.image.size_bytes));
    // Extents of a class are stored in data_page order in the packed part: hash them so.
    std::vector<const Extent*> ext;
    for (auto& e : plan.extents)
        if (e.cls == part.cls) ext.push_back(&e);
    std::sort(ext.begin(), ext.end(), [](const Extent* a, const Extent* b) { return a->data_page < b->data_page; });
    hash::Xxh3Stream h;
    for (auto* e : ext) {
        if (e->image_page > f.size / ps || e->pages > f.size / ps - e->image_page)
            throw BadInput(part.layout_path, "layout file is shorter than its extents");
        h.update(f.data + e->image_page * ps, e->pages * ps);
    }
    uint64_t d = h.digest();
    if (d != part.digest)
        throw BadInput(part.layout_path,
                       "layout digest mismatch (manifest " + hash::to_hex(part.digest) + ", file " + hash::to_hex(d) + ")");
}

CheckStats check_parts(const PlacedReader& r, bool remembered) {
    CheckStats cs;
    // Each file's remembered verdict is looked up once (a stat and a small read each: this is
    // what every restore pays); one progress line covers the raw bytes of what is hashed.
    struct Check {
        const Part* part;
        bool layout;
        bool known;
    };
    std::vector<Check> checks;
    uint64_t todo = 0, base = 0;
    for (auto& p : r.parts()) {
        if (p.compression == Compression::chunks) {
            // A pool part is not read ahead of its use: each chunk is checked against its
            // XXH3-128 name when it arrives (snap-stat --verify reads the whole pool copy).
            ++cs.pool_parts;
            continue;
        }
        for (bool layout : {false, true}) {
            if (layout && p.layout_path.empty()) continue;
            const bool known = remembered && verified::known(layout ? p.layout_path : p.path, p.digest);
            checks.push_back({&p, layout, known});
            if (!known) todo += p.raw_bytes;
        }
    }
    cli::Progress progress("verifying parts", todo, "bytes");
    for (const auto& c : checks) {
        const Part& p = *c.part;
        const std::string& path = c.layout ? p.layout_path : p.path;
        if (c.known) {
            ++cs.files_remembered;
            continue;
        }
        // The stamp is taken before the first byte is read: a verdict is remembered only for
        // the state that was hashed (verified::remember's guard).
        const auto before = file::stamp_of(path);
        const timespec started = verified::wall_clock_now();
        if (c.layout) {
            check_layout(p, r.plan());
        } else {
            check_part(p, [&](uint64_t done) { progress.update(base + done); });
        }
        base += p.raw_bytes;
        progress.update(base);
        ++cs.files_hashed;
        cs.bytes_hashed += c.layout ? p.raw_bytes : p.stored_bytes;
        if (remembered && before) verified::remember(path, *before, started, p.digest);
    }
    return cs;
}

namespace {
std::string resolved(const std::string& path, const std::string& what) {
    char buf[PATH_MAX];
    if (!::realpath(path.c_str(), buf)) throw BadInput(path, what + ": " + std::strerror(errno));
    return buf;
}

void check_private(const std::string& path, const struct stat& st, const std::string& what) {
    // Never world-writable; group-writable only for root's group or ours; owned by us or root.
    if (st.st_mode & S_IWOTH) throw BadInput(path, what + " is writable by every user");
    if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != ::getegid())
        throw BadInput(path, what + " is writable by group " + std::to_string(st.st_gid));
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        throw BadInput(path, what + " belongs to user " + std::to_string(st.st_uid));
}
}  // namespace

void check_locations(const PlacedReader& r) {
    for (const Part& p : r.parts()) {
        const tier::TierSpec& t = r.tier_of(p);
        if (t.kind == tier::TierKind::pool) continue;  // no file: every chunk is checked against its name
        const std::string real_part = resolved(p.path, "cannot open part file");  // a missing part is named as such
        const std::string dir = resolved(t.location, "tier directory");
        struct stat ds {};
        if (::stat(dir.c_str(), &ds) != 0 || !S_ISDIR(ds.st_mode)) throw BadInput(t.location, "tier directory is not a directory");
        check_private(t.location, ds, "tier directory");
        for (const std::string* file : {&p.path, &p.layout_path}) {
            if (file->empty()) continue;
            const std::string real = file == &p.path ? real_part : resolved(*file, "cannot open layout file");
            const auto slash = real.rfind('/');
            if (real.substr(0, slash == 0 ? 1 : slash) != dir)
                throw BadInput(*file, "part file lies outside its tier directory " + t.location +
                                          (real != *file ? " (it resolves to " + real + ")" : ""));
            struct stat st {};
            if (::stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) throw BadInput(*file, "part file is not a regular file");
            check_private(*file, st, "part file");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Materialize

MaterializeResult materialize(const PlacedReader& r, const std::string& out_path, bool check_parts,
                              const std::function<void(uint64_t)>& progress, const pool::ReadOptions& pool_options) {
    if (check_parts)  // the layout files are not read here; pool chunks are checked as they arrive
        for (auto& p : r.parts())
            if (p.compression != Compression::chunks) check_part(p);
    const SplitPlan& plan = r.plan();
    const uint64_t ps = r.page_size();
    std::array<std::unique_ptr<PartSource>, kPageClasses> src;
    for (auto& p : r.parts()) src[static_cast<int>(p.cls)] = std::make_unique<PartSource>(p, pool_options);

    std::vector<const Extent*> ext;
    for (auto& e : plan.extents) ext.push_back(&e);
    std::sort(ext.begin(), ext.end(), [](auto* a, auto* b) { return a->image_page < b->image_page; });

    file::AtomicOutput out(out_path);
    if (::ftruncate(out.fd(), static_cast<off_t>(plan.image.size_bytes)) < 0) throw_errno("truncate " + out_path);
    hash::Xxh3Stream h;
    static const std::vector<std::byte> zeros(kIoBytes);
    auto hash_zeros = [&](uint64_t bytes) {
        while (bytes) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(bytes, zeros.size()));
            h.update(zeros.data(), n);
            bytes -= n;
        }
    };
    std::vector<std::byte> buf;
    MaterializeResult res;
    uint64_t at = 0;  // next image page to account for
    for (auto* e : ext) {
        hash_zeros((e->image_page - at) * ps);
        PartSource& s = *src[static_cast<int>(e->cls)];
        auto m = s.mapped();
        uint64_t done = 0, total = e->pages * ps;
        while (done < total) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(kIoBytes, total - done));
            const std::byte* p;
            if (!m.empty()) {
                p = m.data() + e->data_page * ps + done;
            } else {
                buf.resize(kIoBytes);
                s.read(e->data_page * ps + done, n, buf.data());
                p = buf.data();
            }
            h.update(p, n);
            out.pwrite(p, n, e->image_page * ps + done);
            done += n;
        }
        res.data_bytes += total;
        at = e->image_page + e->pages;
        if (progress) progress(at);
    }
    hash_zeros((plan.image.pages() - at) * ps);
    res.bytes = plan.image.size_bytes;
    res.fingerprint = h.digest();
    if (res.fingerprint != plan.image.fingerprint)
        throw BadInput(r.name(), "the reassembled image's fingerprint is " + hash::to_hex(res.fingerprint) + ", the manifest says " +
                                     hash::to_hex(plan.image.fingerprint));
    res.unchanged = out.commit();
    return res;
}

// ---------------------------------------------------------------------------------------------
// place()

namespace {

// Write one part file from the split's class data. Returns the part (path, sizes, frames).
Part write_part(const SplitReader& split, PageClass cls, const tier::TierSpec& t, uint32_t tier_index,
                const PlaceRequest& req, PartOutcome& outcome, const std::function<void(uint64_t)>& advance) {
    const ChunkEntry& ch = split.artifact().require(split_data_chunk(cls));
    auto data = split.class_data(cls);
    Part part;
    part.cls = cls;
    part.tier = tier_index;
    part.raw_bytes = data.size();
    part.digest = ch.xxh3;
    part.compression = req.compress && t.kind == tier::TierKind::file ? Compression::zstd : Compression::none;
    part.path = t.location + (t.location == "/" ? "" : "/") + hash::to_hex(part.digest) +
                part_suffix(cls, part.compression, req.frame_bytes, req.zstd_level);
    outcome.cls = cls;
    outcome.path = part.path;
    outcome.raw_bytes = part.raw_bytes;
    auto bad_split = [&](uint64_t got) {
        throw BadInput(split.name(), "chunk " + chunk_type_name(ch.type) + ": checksum mismatch (stored " +
                                         hash::to_hex(ch.xxh3) + ", computed " + hash::to_hex(got) + ")");
    };

    if (part.compression == Compression::none) {
        part.stored_bytes = part.raw_bytes;
        // Idempotent re-placing: a file of this name holding exactly these bytes is kept.
        struct stat st {};
        if (::stat(part.path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == part.raw_bytes) {
            MappedFile f(part.path);
            if (hash::xxh3(f.data, f.size) == part.digest) {
                outcome.reused = true;
                outcome.stored_bytes = part.stored_bytes;
                advance(part.raw_bytes);
                return part;
            }
        }
        file::AtomicOutput out(part.path);
        hash::Xxh3Stream h;
        for (uint64_t off = 0; off < data.size(); off += kIoBytes) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(kIoBytes, data.size() - off));
            h.update(data.data() + off, n);
            out.write(data.data() + off, n);
            advance(n);
        }
        if (h.digest() != part.digest) bad_split(h.digest());
        outcome.reused = out.commit();
        outcome.stored_bytes = part.stored_bytes;
        return part;
    }

    // zstd: independent frames of frame_bytes raw bytes each, sizes and checksums in SEEK.
    part.frame_bytes = req.frame_bytes;
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (!cctx) throw std::bad_alloc();
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> guard(cctx, ZSTD_freeCCtx);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, req.zstd_level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);  // XXH3 per frame is in the manifest
    std::vector<std::byte> cbuf(ZSTD_compressBound(part.frame_bytes));
    file::AtomicOutput out(part.path);
    hash::Xxh3Stream h;
    for (uint64_t off = 0; off < data.size(); off += part.frame_bytes) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(part.frame_bytes, data.size() - off));
        const std::byte* raw = data.data() + off;
        h.update(raw, n);
        size_t c = ZSTD_compress2(cctx, cbuf.data(), cbuf.size(), raw, n);
        if (ZSTD_isError(c)) throw Error(part.path + ": zstd: " + ZSTD_getErrorName(c));
        out.write(cbuf.data(), c);
        part.frames.push_back({static_cast<uint32_t>(c), static_cast<uint32_t>(n), hash::xxh3(raw, n)});
        part.stored_bytes += c;
        advance(n);
    }
    if (h.digest() != part.digest) bad_split(h.digest());
    // A part of this name with these bytes (same split, frame size and level) stays untouched.
    outcome.reused = out.commit();
    outcome.stored_bytes = part.stored_bytes;
    return part;
}

// A pool part: the class's bytes as `cut` (pool::cut_part, ids computed once by place() for
// the lease), each chunk encoded (zstd when it pays) here, so that the manifest's bytes do not
// depend on what the pool held already; only the chunks the pool lacks are sent.
Part write_pool_part(const SplitReader& split, PageClass cls, const tier::TierSpec& t, uint32_t tier_index,
                     const PlaceRequest& req, std::vector<pool::ChunkRef> cut, PartOutcome& outcome,
                     const std::function<void(uint64_t)>& advance, pool::ChunkStore& store, const std::string& lease) {
    const ChunkEntry& ch = split.artifact().require(split_data_chunk(cls));
    auto data = split.class_data(cls);
    Part part;
    part.cls = cls;
    part.tier = tier_index;
    part.raw_bytes = data.size();
    part.digest = ch.xxh3;
    part.compression = Compression::chunks;
    part.frame_bytes = req.chunk_bytes;
    part.path = t.location + "#" + hash::to_hex(part.digest) + "." + class_name(cls);
    part.chunks = std::move(cut);
    outcome.cls = cls;
    outcome.path = part.path;
    outcome.raw_bytes = part.raw_bytes;
    if (hash::xxh3(data.data(), data.size()) != part.digest)
        throw BadInput(split.name(), "chunk " + chunk_type_name(ch.type) + ": checksum mismatch");
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (!cctx) throw std::bad_alloc();
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> guard(cctx, ZSTD_freeCCtx);
    std::vector<pool::ChunkId> seen_ids;  // distinct within this part, sorted
    uint64_t off = 0;
    constexpr size_t kBatch = 256;
    for (size_t i = 0; i < part.chunks.size(); i += kBatch) {
        std::vector<std::pair<pool::ChunkId, std::string>> batch;
        std::vector<pool::ChunkId> ids;
        uint64_t batch_raw = 0;
        for (size_t j = i; j < std::min(part.chunks.size(), i + kBatch); ++j) {
            pool::ChunkRef& c = part.chunks[j];
            std::string v = pool::encode_value(data.data() + off, c.raw_bytes, req.zstd_level, cctx);
            c.stored_bytes = static_cast<uint32_t>(v.size());
            part.stored_bytes += v.size();
            off += c.raw_bytes;
            batch_raw += c.raw_bytes;
            auto at = std::lower_bound(seen_ids.begin(), seen_ids.end(), c.id);
            if (at != seen_ids.end() && *at == c.id) continue;  // a repeat within the part
            seen_ids.insert(at, c.id);
            ids.push_back(c.id);
            batch.emplace_back(c.id, std::move(v));
        }
    auto have = store.present(ids);
        std::vector<std::pair<pool::ChunkId, std::string>> send;
        for (size_t k = 0; k < batch.size(); ++k) {
            if (have[k]) {
                ++outcome.chunks_present;
                outcome.bytes_present += batch[k].second.size();
            } else {
                ++outcome.chunks_uploaded;
                outcome.bytes_uploaded += batch[k].second.size();
                send.push_back(std::move(batch[k]));
            }
        }
        store.put(send);
        store.renew_lease(lease, kLeaseMs);
        advance(batch_raw);
    }
    outcome.chunks = part.chunks.size();
    outcome.distinct_chunks = seen_ids.size();
    outcome.stored_bytes = part.stored_bytes;
    return part;
}

// The image-order layout of an uncompressed part: every page of the class at its image
// offset, holes elsewhere (ftruncate), named after the part. An identical file is kept.
std::string write_layout(const SplitReader& split, const Part& part, const std::function<void(uint64_t)>& advance, bool& reused) {
    const SplitPlan& plan = split.plan();
    const uint64_t ps = split.page_size();
    const std::string path = part.path + ".layout";
    Part probe = part;
    probe.layout_path = path;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == plan.image.size_bytes) {
        try {
            check_layout(probe, plan);
            reused = true;
            return path;
        } catch (const BadInput&) {
            // rewritten below
        }
    }
    file::AtomicOutput out(path);
    for (auto& e : plan.extents) {
        if (e.cls != part.cls) continue;
        auto data = split.extent_data(e);
        out.pwrite(data.data(), data.size(), e.image_page * ps);
        advance(0);
    }
    if (::ftruncate(out.fd(), static_cast<off_t>(plan.image.size_bytes)) != 0) throw_errno("ftruncate " + path);
    reused = out.commit();
    return path;
}

}  // namespace

PlaceResult place(const SplitReader& split, const PlaceRequest& req, const std::string& out_path,
                  const std::function<void(uint64_t, uint64_t)>& progress) {
    const SplitPlan& plan = split.plan();
    const uint32_t ps = split.page_size();
    if (req.tiers.empty()) throw UsageError("no tiers to place on");
    if (req.frame_bytes == 0 || req.frame_bytes % ps || req.frame_bytes > kMaxFrameBytes)
        throw UsageError("frame size must be a multiple of the page size (" + std::to_string(ps) + ") up to 64 MiB");
    if (req.chunk_bytes == 0 || req.chunk_bytes % ps || req.chunk_bytes > pool::kMaxChunkBytes)
        throw UsageError("chunk size must be a multiple of the page size (" + std::to_string(ps) + ") up to 4 MiB");
    auto choice = cost::choose(req.params, req.tiers, plan.pages_per_class, req.fixed, ps);

    // A pool among the chosen tiers: one per placement. Its chunk ids are leased before the
    // pool is asked what it holds (common/pool/store.hpp: placement against collection).
    int pool_tier = -1;
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        int ti = choice[static_cast<int>(c)];
        if (ti < 0 || req.tiers[ti].kind != tier::TierKind::pool) continue;
        if (pool_tier >= 0 && req.tiers[pool_tier].location != req.tiers[ti].location)
            throw UsageError("two pools in one placement (" + req.tiers[pool_tier].location + ", " + req.tiers[ti].location + ")",
                             "place every pool class into one pool");
        pool_tier = ti;
    }
    std::unique_ptr<pool::ChunkStore> store;
    std::string lease;
    std::vector<pool::ChunkId> pool_ids;                       // distinct, sorted: the lease's list
    std::array<std::vector<pool::ChunkRef>, kPageClasses> cut;  // each pool class's chunks, in part order
    struct LeaseGuard {
        pool::ChunkStore* store = nullptr;
        std::string* lease;
        ~LeaseGuard() {
            if (!store || lease->empty()) return;
            try {
                store->end_lease(*lease);
            } catch (...) {
            }
        }
    } lease_guard{nullptr, &lease};
    if (pool_tier >= 0) {
        store = std::make_unique<pool::ChunkStore>(pool::parse_pool_url(req.tiers[pool_tier].location));
        store->client().check_no_eviction();
        for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
            int ci = static_cast<int>(c);
            if (choice[ci] != pool_tier || plan.pages_per_class[ci] == 0) continue;
            auto data = split.class_data(c);
            uint64_t off = 0;
            for (uint32_t len : pool::cut_part(plan, c, req.chunk_bytes)) {
                cut[ci].push_back({pool::chunk_id(data.data() + off, len), len, 0});
                pool_ids.push_back(cut[ci].back().id);
                off += len;
            }
        }
        std::sort(pool_ids.begin(), pool_ids.end());
        pool_ids.erase(std::unique(pool_ids.begin(), pool_ids.end()), pool_ids.end());
        lease = store->begin_lease(pool_ids, kLeaseMs);
        lease_guard.store = store.get();
        store->wait_for_collection(req.pool_wait_ms);
    }

    PlaceResult res;
    // The manifest records the tiers that hold a part, not every candidate: an unused default
    // tier (dram, file:<the output's directory>) would make the same placement's bytes depend
    // on where the manifest was written. at[ti]: tier ti's index in the manifest.
    std::vector<bool> used(req.tiers.size(), false);
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold})
        if (plan.pages_per_class[static_cast<int>(c)]) used[choice[static_cast<int>(c)]] = true;
    std::vector<uint32_t> at(req.tiers.size(), 0);
    for (size_t ti = 0; ti < req.tiers.size(); ++ti)
        if (used[ti]) {
            at[ti] = static_cast<uint32_t>(res.manifest.tiers.size());
            res.manifest.tiers.push_back(req.tiers[ti]);
        }
    uint64_t total = 0, done = 0;
    for (int c = 1; c < kPageClasses; ++c) total += plan.pages_per_class[c] * ps;
    auto advance = [&](uint64_t n) {
        done += n;
        if (progress) progress(done, total);
    };
    std::vector<cost::ClassPlacement> placements;
    nlohmann::json chosen_by = nlohmann::json::object();
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        int ci = static_cast<int>(c);
        if (plan.pages_per_class[ci] == 0) continue;
        int ti = choice[ci];
        PartOutcome oc;
        Part part = ti == pool_tier ? write_pool_part(split, c, req.tiers[ti], at[ti], req, std::move(cut[ci]), oc, advance,
                                                      *store, lease)
                                    : write_part(split, c, req.tiers[ti], at[ti], req, oc, advance);
        // RO on a byte-addressable tier: also in image order, so tiered maps it with one mapping.
        if (req.layout && c == PageClass::ro && part.compression == Compression::none &&
            tier::byte_addressable(req.tiers[ti].kind))
            oc.layout_path = part.layout_path = write_layout(split, part, advance, oc.layout_reused);
        placements.push_back({c, plan.pages_per_class[ci], part.raw_bytes, part.stored_bytes,
                              part.compression == Compression::none ? 0 : part.frame_bytes, &res.manifest.tiers[at[ti]]});
        chosen_by[class_name(c)] = req.fixed[ci] >= 0 ? "user" : "model";
        res.manifest.parts.push_back(std::move(part));
        res.outcomes.push_back(oc);
    }
    res.estimate = cost::estimate(req.params, placements, cost::count_zero_touches(plan), plan.pages_per_class[0], ps);
    res.manifest.cost = {{"params", req.params.to_json()},
                         {"estimate", res.estimate.to_json()},
                         {"chosen_by", chosen_by},
                         {"compress", req.compress},
                         {"zstd_level", req.zstd_level},
                         {"frame_bytes", req.frame_bytes}};
    if (store && req.pool_replicas > 0) {
        int acked = store->client().wait_replicas(req.pool_replicas, 10000);
        if (acked < req.pool_replicas)
            throw Error("pool " + store->url().text + ": " + std::to_string(acked) + " replicas acknowledged the chunks, " +
                            std::to_string(req.pool_replicas) + " asked for",
                        ExitCode::runtime, "check the replicas, or lower --pool-replicas");
    }
    if (store) res.manifest.cost["pool_chunk_bytes"] = req.chunk_bytes;
    // A pool placement is registered in the pool (what it names, then its bytes, then its
    // name) before the manifest file appears, and only after every chunk was acknowledged:
    // no manifest ever names a chunk the pool does not hold.
    res.digest = write_manifest(plan, res.manifest, split.digest(), out_path, store ? std::function<void(uint64_t, const std::string&)>(
        [&](uint64_t digest, const std::string& bytes) { res.replaced = store->register_manifest(digest, bytes, pool_ids, req.pool_name); })
        : std::function<void(uint64_t, const std::string&)>(), &res.output_unchanged);
    return res;
}

// ---------------------------------------------------------------------------------------------
// snap-stat

nlohmann::json pool_view(const PlacedReader& r, const std::string& use_url) {
    nlohmann::json parts = nlohmann::json::array();
    std::unique_ptr<pool::ChunkStore> store;
    std::string url;
    std::set<pool::ChunkId> others;  // chunks named by other registered manifests
    uint64_t manifests = 0;
    bool registered = false;
    for (auto& p : r.parts()) {
        if (p.compression != Compression::chunks) continue;
        if (!store) {
            url = use_url.empty() ? pool_url_of(p) : use_url;
            store = std::make_unique<pool::ChunkStore>(pool::parse_pool_url(url));
            for (auto& m : store->list()) {
                ++manifests;
                if (m.digest == r.digest()) registered = true;
                else others.insert(m.ids.begin(), m.ids.end());
            }
        }
        std::vector<pool::ChunkId> ids;
        std::map<pool::ChunkId, uint32_t> stored;
        for (auto& c : p.chunks)
            if (stored.emplace(c.id, c.stored_bytes).second) ids.push_back(c.id);
        auto have = store->present(ids);
        uint64_t present = 0, shared = 0, unique_bytes = 0, shared_bytes = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            present += have[i];
            if (others.count(ids[i])) {
                ++shared;
                shared_bytes += stored[ids[i]];
            } else {
                unique_bytes += stored[ids[i]];
            }
        }
        parts.push_back({{"class", class_name(p.cls)},
                         {"distinct_chunks", ids.size()},
                         {"present_chunks", present},
                         {"missing_chunks", ids.size() - present},
                         {"shared_chunks", shared},
                         {"shared_bytes", shared_bytes},
                         {"unique_bytes", unique_bytes}});
    }
    if (!store) return nullptr;
    return {{"pool_url", url}, {"registered", registered}, {"registered_manifests", manifests}, {"parts", parts}};
}

nlohmann::json describe_placed(const PlacedReader& r) {
    const auto& plan = r.plan();
    nlohmann::json tiers = nlohmann::json::array();
    for (auto& t : r.tiers()) {
        nlohmann::json j = {{"name", t.name()}, {"tier_kind", tier::kind_name(t.kind)}, {"location", t.location}};
        if (t.node >= 0) j["node"] = t.node;
        if (t.budget_bytes != tier::kUnlimited) j["budget_bytes"] = t.budget_bytes;
        else j["budget_bytes"] = nullptr;
        tiers.push_back(j);
    }
    nlohmann::json parts = nlohmann::json::array();
    for (auto& p : r.parts()) {
        nlohmann::json j = {{"class", class_name(p.cls)},
                            {"tier", r.tier_of(p).name()},
                            {"path", p.path},
                            {"offset_bytes", p.offset},
                            {"raw_bytes", p.raw_bytes},
                            {"stored_bytes", p.stored_bytes},
                            {"digest", hash::to_hex(p.digest)},
                            {"compression", compression_name(p.compression)}};
        if (p.compression == Compression::zstd) {
            j["frame_bytes"] = p.frame_bytes;
            j["frames"] = p.frames.size();
        }
        if (p.compression == Compression::chunks) {
            std::vector<pool::ChunkId> ids;
            uint64_t compressed = 0;
            for (auto& c : p.chunks) {
                ids.push_back(c.id);
                compressed += c.stored_bytes < c.raw_bytes + pool::kValueHeaderBytes;
            }
            std::sort(ids.begin(), ids.end());
            const uint64_t distinct = static_cast<uint64_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
            j["pool"] = {{"pool_url", pool_url_of(p)},
                         {"chunk_bytes", p.frame_bytes},
                         {"chunks", p.chunks.size()},
                         {"distinct_chunks", distinct},
                         {"compressed_chunks", compressed}};
        }
        j["layout_path"] = p.layout_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.layout_path);
        parts.push_back(j);
    }
    nlohmann::json j = {{"kind", "placed"}};
    j.update(describe_plan(plan));  // common/split.hpp: the one description of a plan
    j["tiers"] = tiers;
    j["parts"] = parts;
    if (r.cost().contains("estimate")) j["estimate"] = r.cost()["estimate"];
    if (r.cost().contains("params")) j["cost_params"] = r.cost()["params"];
    if (r.cost().contains("chosen_by")) j["chosen_by"] = r.cost()["chosen_by"];
    return j;
}

std::string text_placed(const PlacedReader& r) {
    std::ostringstream o;
    const auto& plan = r.plan();
    const uint64_t pages = plan.image.pages(), ps = r.page_size();
    o << r.name() << ": placed split of a " << tier::format_size(plan.image.size_bytes) << " image (" << pages
      << " pages of " << tier::format_size(ps) << "), fingerprint " << hash::to_hex(plan.image.fingerprint) << "\n";
    char line[512];
    std::snprintf(line, sizeof line, "  %-5s %10llu pages  anonymous memory\n", "zero",
                  static_cast<unsigned long long>(plan.pages_per_class[0]));
    o << line;
    for (PageClass c : {PageClass::rw, PageClass::ro, PageClass::cold}) {
        const Part* p = r.part(c);
        if (!p) {
            std::snprintf(line, sizeof line, "  %-5s %10llu pages\n", class_name(c), 0ull);
        } else {
            std::string comp = p->compression == Compression::none ? std::string()
                               : p->compression == Compression::chunks
                                   ? ", " + std::to_string(p->chunks.size()) + " chunks of up to " + tier::format_size(p->frame_bytes) +
                                         ", " + tier::format_size(p->stored_bytes) + " stored"
                                   : ", zstd " + tier::format_size(p->stored_bytes) + " in " + std::to_string(p->frames.size()) + " frames";
            std::snprintf(line, sizeof line, "  %-5s %10llu pages  %-10s %s (%s%s)\n", class_name(c),
                          static_cast<unsigned long long>(plan.pages_per_class[static_cast<int>(c)]),
                          r.tier_of(*p).name().c_str(), p->path.c_str(), tier::format_size(p->raw_bytes).c_str(), comp.c_str());
        }
        o << line;
    }
    if (r.cost().contains("estimate")) {
        auto& e = r.cost()["estimate"];
        std::snprintf(line, sizeof line, "  estimated restore %.1f us, dram parts %s, private DRAM after resume %s\n",
                      e.value("restore_us", 0.0), tier::format_size(e.value("dram_bytes", uint64_t{0})).c_str(),
                      tier::format_size(e.value("private_dram_bytes", uint64_t{0})).c_str());
        o << line;
    }
    o << "  digest " << hash::to_hex(r.digest()) << ", derived from " << hash::to_hex(r.parent_digest()) << "\n";
    return o.str();
}

}  // namespace snap::placed

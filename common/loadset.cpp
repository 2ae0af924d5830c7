// SPDX-License-Identifier: Apache-2.0
#include "loadset.hpp"

#include "error.hpp"
#include "format/container.hpp"
#include "hash.hpp"

#include <algorithm>
#include <cstring>
#include <map>

namespace snap {

using namespace format;

namespace {
constexpr ChunkType kImgi = chunk_type("IMGI");
constexpr ChunkType kMeta = chunk_type("META");
constexpr ChunkType kTuch = chunk_type("TUCH");
constexpr size_t kTouchBytes = 24;
}  // namespace

void LoadingSet::normalize() {
    std::sort(touches.begin(), touches.end(), [](const Touch& a, const Touch& b) {
        if (a.page != b.page) return a.page < b.page;
        if (a.rank != b.rank) return a.rank < b.rank;
        return a.time_ns < b.time_ns;
    });
    std::vector<Touch> out;
    out.reserve(touches.size());
    for (auto& t : touches) {
        if (!out.empty() && out.back().page == t.page) out.back().access |= t.access;
        else out.push_back(t);
    }
    std::sort(out.begin(), out.end(), [](const Touch& a, const Touch& b) {
        if (a.rank != b.rank) return a.rank < b.rank;
        if (a.time_ns != b.time_ns) return a.time_ns < b.time_ns;
        return a.page < b.page;
    });
    touches = std::move(out);
}

uint64_t LoadingSet::read_pages() const {
    return static_cast<uint64_t>(std::count_if(touches.begin(), touches.end(),
                                               [](const Touch& t) { return !(t.access & kAccessWrite); }));
}

uint64_t LoadingSet::written_pages() const {
    return static_cast<uint64_t>(std::count_if(touches.begin(), touches.end(),
                                               [](const Touch& t) { return (t.access & kAccessWrite) != 0; }));
}

uint64_t write_loadset(const LoadingSet& ls, const std::string& path, bool* unchanged) {
    ArtifactWriter w(Kind::loadset, ls.image.page_size, ls.image.fingerprint);
    w.set_flags((ls.knows_writes ? kLoadsetKnowsWrites : 0) | (ls.has_time ? kLoadsetHasTime : 0), 0);
    std::vector<std::byte> imgi;
    put_u64(imgi, ls.image.size_bytes);
    put_u64(imgi, ls.image.fingerprint);
    put_u32(imgi, ls.image.page_size);
    put_u32(imgi, 0);
    w.add_chunk(kImgi, std::move(imgi));
    nlohmann::json meta = ls.meta;
    meta["method"] = ls.method;
    w.add_chunk(kMeta, meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    std::vector<std::byte> t;
    t.reserve(ls.touches.size() * kTouchBytes);
    for (auto& x : ls.touches) {
        put_u64(t, x.page);
        put_u64(t, x.time_ns);
        put_u32(t, x.rank);
        put_u32(t, x.access);
    }
    w.add_chunk(kTuch, std::move(t));
    file::AtomicOutput out(path);
    uint64_t d = w.finish(out);
    const bool same = out.commit();
    if (unchanged) *unchanged = same;
    return d;
}

LoadingSet read_loadset(const std::string& path, uint64_t* digest) { return read_loadset(file::InputFile(path, file::InputFile::Expect::artifact), digest); }

LoadingSet read_loadset(file::InputFile file, uint64_t* digest) {
    Artifact a(std::move(file), Kind::loadset, kLoadsetKnowsWrites | kLoadsetHasTime, {kImgi, kMeta, kTuch});
    a.verify_all();
    LoadingSet ls;
    auto imgi = a.bytes(a.require(kImgi));
    if (imgi.size() != 24) a.bad("chunk IMGI has " + std::to_string(imgi.size()) + " bytes, expected 24");
    ls.image.size_bytes = get_u64(&imgi[0]);
    ls.image.fingerprint = get_u64(&imgi[8]);
    ls.image.page_size = get_u32(&imgi[16]);
    if (ls.image.page_size != a.header().page_size) a.bad("IMGI page size disagrees with the header");
    if (ls.image.size_bytes % ls.image.page_size) a.bad("image size is not a multiple of the page size");
    auto meta = a.bytes(a.require(kMeta));
    ls.meta = parse_json_chunk(a, meta, "META");
    if (!ls.meta.is_object() || !ls.meta.contains("method") || !ls.meta["method"].is_string())
        a.bad("chunk META lacks the recording method");
    ls.method = ls.meta["method"].get<std::string>();
    ls.knows_writes = a.header().required_flags & kLoadsetKnowsWrites;
    ls.has_time = a.header().required_flags & kLoadsetHasTime;
    auto t = a.bytes(a.require(kTuch));
    if (t.size() % kTouchBytes) a.bad("chunk TUCH length " + std::to_string(t.size()) + " is not a multiple of 24");
    uint64_t n = t.size() / kTouchBytes;
    uint64_t pages = ls.image.pages();
    if (n > pages) a.bad("more touched pages (" + std::to_string(n) + ") than the image has");
    // Nothing here is sized by the image size the file claims (it may claim 2^46 bytes in a
    // few KiB): duplicates are found by sorting the pages listed, bounded by the chunk.
    std::vector<uint64_t> listed;
    listed.reserve(n);
    ls.touches.resize(n);
    for (uint64_t i = 0; i < n; ++i) {
        const std::byte* p = &t[i * kTouchBytes];
        Touch& x = ls.touches[i];
        x.page = get_u64(p);
        x.time_ns = get_u64(p + 8);
        x.rank = get_u32(p + 16);
        uint32_t acc = get_u32(p + 20);
        if (x.page >= pages)
            a.bad("touch " + std::to_string(i) + ": page " + std::to_string(x.page) + " is past the image end (" +
                  std::to_string(pages) + " pages)");
        if (acc == 0 || acc > 3) a.bad("touch " + std::to_string(i) + ": invalid access bits " + std::to_string(acc));
        listed.push_back(x.page);
        x.access = static_cast<uint8_t>(acc);
        if (i > 0) {
            const Touch& prev = ls.touches[i - 1];
            if (x.rank < prev.rank || (x.rank == prev.rank && x.time_ns < prev.time_ns))
                a.bad("touches are not in first-touch order at entry " + std::to_string(i));
        }
    }
    std::sort(listed.begin(), listed.end());
    if (auto dup = std::adjacent_find(listed.begin(), listed.end()); dup != listed.end())
        a.bad("page " + std::to_string(*dup) + " appears twice");
    if (digest) *digest = a.digest();
    return ls;
}

MergeSpec parse_merge_spec(const std::string& text) {
    if (text == "union") return {MergeMode::union_all, 1};
    if (text == "intersect") return {MergeMode::intersect, 0};
    if (text.rfind("atleast:", 0) == 0) {
        std::string num = text.substr(8);
        char* end = nullptr;
        unsigned long k = std::strtoul(num.c_str(), &end, 10);
        if (!num.empty() && end && *end == '\0' && k >= 1 && k < 1000000) return {MergeMode::at_least, static_cast<unsigned>(k)};
    }
    throw UsageError("--merge: expected union, intersect or atleast:K (K >= 1), got '" + text + "'");
}

LoadingSet merge_loadsets(const std::vector<LoadingSet>& sets, const MergeSpec& spec) {
    if (sets.empty()) throw UsageError("no loading set to merge");
    if (sets.size() == 1) return sets.front();
    LoadingSet out;
    out.image = sets.front().image;
    out.method = "merge";
    out.knows_writes = true;
    out.has_time = true;
    nlohmann::json sources = nlohmann::json::array();
    for (auto& s : sets) {
        if (!(s.image == out.image)) throw UsageError("loading sets were recorded against different images");
        out.knows_writes = out.knows_writes && s.knows_writes;
        out.has_time = out.has_time && s.has_time;
        sources.push_back({{"method", s.method}, {"pages", s.touches.size()}});
    }
    unsigned need = spec.mode == MergeMode::union_all ? 1
                    : spec.mode == MergeMode::intersect ? static_cast<unsigned>(sets.size())
                                                         : spec.k;
    struct Acc {
        unsigned seen = 0;
        uint8_t access = 0;
        uint32_t rank = UINT32_MAX;
        uint64_t time_ns = UINT64_MAX;
    };
    std::map<uint64_t, Acc> pages;
    for (auto& s : sets)
        for (auto& t : s.touches) {
            Acc& a = pages[t.page];
            a.seen++;
            a.access |= t.access;
            a.rank = std::min(a.rank, t.rank);
            a.time_ns = std::min(a.time_ns, t.time_ns);
        }
    for (auto& [page, a] : pages)
        if (a.seen >= need) out.touches.push_back({page, out.has_time ? a.time_ns : 0, a.rank, a.access});
    out.meta["sources"] = sources;
    out.meta["merge"] = spec.mode == MergeMode::union_all ? "union"
                        : spec.mode == MergeMode::intersect ? "intersect"
                                                             : "atleast:" + std::to_string(spec.k);
    out.normalize();
    return out;
}

}  // namespace snap

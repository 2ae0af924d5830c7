// SPDX-License-Identifier: Apache-2.0
// The placed artifact (DESIGN.md §3): the manifest snap-place writes after putting each
// class's page data on a tier. It is self-sufficient for restore: it carries the split's
// plan (IMGI, META, CLAS, ORDR, EXTN — same encoding as in the split, so the split file may
// be deleted), the tiers with their budgets, one part per non-empty class (RW, RO, COLD: tier,
// absolute path, offset, lengths, XXH3-64 of the uncompressed bytes, compression and, for
// zstd, a seek table of independent frames), and the cost model's parameters and estimate.
// man/snapkit-formats-placed.inc is the byte-level description.
//
// The page data itself lives in part files named by content (`<digest>.rw`, `.ro`, `.cold`,
// `.cold.f64k-z1.zst`, frame size and level in the name): re-placing the same split is idempotent, and a part's bytes keep the split's
// layout (extent data_page × page size), page-aligned so a byte-addressable tier's part can
// be mmap'ed in place.
#pragma once
#include "costmodel.hpp"
#include "format/container.hpp"
#include "pool/reader.hpp"
#include "split.hpp"
#include "tier.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace snap::placed {

// chunks: the part lives in a pool (tier kind pool) as content-addressed chunks, each zstd when
// that pays (common/pool/chunk.hpp); the manifest lists them in part order (chunk PCHK).
enum class Compression : uint32_t { none = 0, zstd = 1, chunks = 2 };
const char* compression_name(Compression c);

constexpr uint32_t kDefaultFrameBytes = 64 * 1024;
constexpr uint32_t kMaxFrameBytes = 64u << 20;

struct Frame {
    uint32_t stored_bytes = 0;  // compressed size of this zstd frame
    uint32_t raw_bytes = 0;     // its decompressed size (frame_bytes, the last one may be shorter)
    uint64_t xxh3 = 0;          // XXH3-64 of the decompressed bytes
    bool operator==(const Frame&) const = default;
};

struct Part {
    PageClass cls = PageClass::rw;
    uint32_t tier = 0;  // index into the tier table
    Compression compression = Compression::none;
    uint32_t frame_bytes = 0;  // raw bytes per frame (zstd) or the chunk size (chunks), 0 for none
    std::string path;          // absolute path of the part file; pool parts: "URL#DIGEST.CLASS" (a name, not a file)
    uint64_t offset = 0;       // where the part's bytes start in that file (page-aligned)
    uint64_t stored_bytes = 0; // bytes in the file (= raw_bytes unless compressed)
    uint64_t raw_bytes = 0;    // pages × page size
    uint64_t digest = 0;       // XXH3-64 of the raw bytes (= the split's page-data chunk checksum)
    std::vector<Frame> frames; // zstd only, in order
    std::vector<pool::ChunkRef> chunks;  // chunks only, in part order
    // Optional image-order copy of the same pages (uncompressed parts on byte-addressable
    // tiers): a sparse file of the image's size holding each of the class's pages at its image
    // offset (page p at p × page size) and holes elsewhere, so that one mapping of it puts every
    // page of the class in place (tiered restore). Same bytes, same digest (read in extent order).
    std::string layout_path;
    bool operator==(const Part&) const = default;
};

// Everything the manifest holds besides the plan.
struct Manifest {
    std::vector<tier::TierSpec> tiers;
    std::vector<Part> parts;        // one per non-empty class, in class order rw, ro, cold
    nlohmann::json cost = nlohmann::json::object();  // {"params", "estimate", "chosen_by"}
};

// Write a placed artifact (the manifest only; parts must already be in place). Returns its digest.
// With `before_commit`, it is called with the artifact's bytes after they are written and
// synced to the temporary file and before it is renamed into place (pool registration).
// `unchanged` (if given): path already held these bytes and was left untouched.
uint64_t write_manifest(const SplitPlan& plan, const Manifest& m, uint64_t parent_digest, const std::string& path,
                        const std::function<void(uint64_t digest, const std::string& bytes)>& before_commit = {},
                        bool* unchanged = nullptr);

// The pool URL a pool part's name starts with ("" for other parts).
std::string pool_url_of(const Part& part);

class PlacedReader;

// The pool an artifact's pool parts are read from: `placed`, the URL its parts name (the seeds it
// was placed with; "" when no part is in a pool), and `used`, the same pool as this host reaches
// it — `override_url` when given (other seeds, the same namespace, so the same chunk keys), else
// `placed`. `option` names the flag for the errors: UsageError when the override is given to an
// artifact without pool parts, to one whose parts name two pools, or in another namespace.
struct PoolUrls {
    std::string placed, used;
};
PoolUrls resolve_pool_url(const PlacedReader& r, const std::string& override_url, const std::string& option);

// A parsed and cross-checked placed artifact. Part files are not opened until asked.
class PlacedReader {
public:
    explicit PlacedReader(const std::string& path);
    // Over a file already opened (a pipe or FIFO can be read only once).
    explicit PlacedReader(file::InputFile file);
    const std::string& name() const { return artifact_.name(); }
    uint64_t digest() const { return artifact_.digest(); }
    uint64_t parent_digest() const { return artifact_.header().parent_digest; }
    const SplitPlan& plan() const { return plan_; }
    const ImageIdentity& image() const { return plan_.image; }
    uint32_t page_size() const { return plan_.image.page_size; }
    const std::vector<tier::TierSpec>& tiers() const { return m_.tiers; }
    const std::vector<Part>& parts() const { return m_.parts; }
    const Part* part(PageClass cls) const;  // null for ZERO and for empty classes
    const tier::TierSpec& tier_of(const Part& p) const { return m_.tiers[p.tier]; }
    const nlohmann::json& cost() const { return m_.cost; }
    const Manifest& manifest() const { return m_; }
    const format::Artifact& artifact() const { return artifact_; }

private:
    format::Artifact artifact_;
    SplitPlan plan_;
    Manifest m_;
};

// Random access to a part's raw bytes. Opening checks the file exists and is long enough;
// a missing, short or corrupt part is BadInput naming the part file (exit 3).
class PartSource {
public:
    explicit PartSource(const Part& part, const pool::ReadOptions& pool_options = {});
    ~PartSource();
    PartSource(const PartSource&) = delete;
    PartSource& operator=(const PartSource&) = delete;
    const Part& part() const { return part_; }
    // Uncompressed parts: the raw bytes, mapped in place. Empty span for compressed and pool parts.
    std::span<const std::byte> mapped() const;
    // The whole part into dst: read_span over all of it.
    void read_all(std::byte* dst);
    // Raw bytes [offset, offset+len) into dst in bulk, both ends on unit boundaries (unit_start):
    // a pool part in large pipelines (its chunks checked, the chunk cache bypassed), a
    // compressed part frame by frame straight into dst (each frame checked), an uncompressed
    // one copied from its mapping. One bulk read at a time; it shares no state with read(), so
    // the two may run in different threads.
    void read_span(uint64_t offset, uint64_t len, std::byte* dst);
    // The start of the unit (chunk, frame; a page when uncompressed) holding offset, and the
    // largest unit: a window of whole units that holds at least one.
    uint64_t unit_start(uint64_t offset) const;
    uint64_t max_unit_bytes() const;
    pool::PartReader* pool_reader() const { return pool_.get(); }
    // Copy raw bytes [offset, offset+len) to dst (decompressing frames as needed; each frame's
    // checksum is checked when it is decompressed).
    void read(uint64_t offset, size_t len, std::byte* dst);
    // Uncompressed parts: read raw bytes with pread(2), not through the mapping — one I/O of
    // exactly these bytes, where a fault on a cold mapping would pull in read_ahead_kb
    // (8 MiB here) around it. Throws BadInput on a short file.
    void pread(uint64_t offset, size_t len, std::byte* dst) const;
    // Reads of this part are scattered (demand faults): no readahead around them
    // (POSIX_FADV_RANDOM), so that a pread reads what it asks for and no more. Without it a
    // cold 64 KiB read pulls 256 KiB or more (read_ahead_kb is 8 MiB here).
    void advise_random() const;

private:
    void load_frame(size_t i);
    // Frame i decompressed into dst (its raw_bytes), its checksum checked.
    void decode_frame(size_t i, std::byte* dst, void* dctx) const;
    Part part_;
    int fd_ = -1;
    std::byte* map_ = nullptr;
    size_t map_len_ = 0;
    std::vector<uint64_t> raw_start_, stored_start_;  // per frame
    std::vector<std::byte> frame_;
    size_t frame_index_ = SIZE_MAX;
    void* dctx_ = nullptr;       // read()'s
    void* span_dctx_ = nullptr;  // read_span()'s
    std::unique_ptr<pool::PartReader> pool_;
};

// Read the whole part and compare its XXH3-64 with the manifest. Throws BadInput(part path).
// Pool parts are read from pool_options.url when set (resolve_pool_url), else the URL they name.
void check_part(const Part& part, const std::function<void(uint64_t)>& progress = {},
                const pool::ReadOptions& pool_options = {});  // progress: raw bytes done
// The same for a part's image-order layout file (its pages read in the plan's extent order).
void check_layout(const Part& part, const SplitPlan& plan);
// Every part and every layout file of the artifact (pool parts excepted). With `remembered`, a file whose stat
// matches a verdict remembered for its digest (common/verified.hpp) is not read again, and
// every file found good is remembered.
struct CheckStats {
    uint64_t files_hashed = 0, files_remembered = 0, bytes_hashed = 0;
    uint64_t pool_parts = 0;  // not read: their chunks are checked one by one as they arrive
};
CheckStats check_parts(const PlacedReader& r, bool remembered = false);
// Where the part files are, checked without reading them (every restore does it): each part
// and layout file, symlinks resolved, is a regular file directly inside its tier's directory
// (a manifest cannot point a restore at another file of the host), and neither the file nor
// that directory may be written by a user other than its owner and root (nobody else can swap
// the bytes under a restore). Throws BadInput naming the file.
void check_locations(const PlacedReader& r);

// Reassemble the image from the parts: ZERO pages become holes, every extent is written at its
// image offset; the result's XXH3-64 is checked against the image fingerprint. check_parts
// verifies each part's digest first so that a bad part is named. Written atomically.
struct MaterializeResult {
    uint64_t bytes = 0, data_bytes = 0, fingerprint = 0;
    bool unchanged = false;  // out_path held this image already and was left untouched
};
// Pool parts are read as pool_options says (cache, read-ahead, --pool's seeds).
MaterializeResult materialize(const PlacedReader& r, const std::string& out_path, bool check_parts = true,
                              const std::function<void(uint64_t pages_done)>& progress = {},
                              const pool::ReadOptions& pool_options = {});

// What snap-place does, as a library call.
struct PlaceRequest {
    std::vector<tier::TierSpec> tiers;   // resolved (absolute locations, budgets)
    std::array<int, kPageClasses> fixed{-1, -1, -1, -1};  // user's tier index per class, -1 = model
    cost::Params params = cost::Params::defaults();
    bool compress = false;               // zstd frames for parts on file: tiers
    uint32_t chunk_bytes = pool::kDefaultChunkBytes;  // pool tiers: the chunk size (page multiple)
    std::string pool_name;               // pool tiers: register the manifest under this name too
    uint64_t pool_wait_ms = 60000;       // pool tiers: how long to wait for a running collection
    int pool_replicas = 0;               // pool tiers: WAIT for this many replicas after publishing
    bool layout = true;                  // image-order layout files for RO on byte-addressable tiers
    uint32_t frame_bytes = kDefaultFrameBytes;
    int zstd_level = 1;
};

struct PartOutcome {
    PageClass cls;
    std::string path;
    bool reused = false;  // an identical part file was already there (left untouched)
    bool layout_reused = false;  // so was the layout file
    uint64_t raw_bytes = 0, stored_bytes = 0;
    std::string layout_path;  // the image-order layout written beside it, if any
    // Pool parts: chunks in the part, distinct among them, uploaded now vs already in the pool
    // (value bytes: compressed when it paid).
    uint64_t chunks = 0, distinct_chunks = 0, chunks_uploaded = 0, chunks_present = 0;
    uint64_t bytes_uploaded = 0, bytes_present = 0;
};

struct PlaceResult {
    Manifest manifest;
    cost::Estimate estimate;
    std::vector<PartOutcome> outcomes;
    uint64_t digest = 0;
    bool output_unchanged = false;  // out_path held this manifest already and was left untouched
    std::optional<uint64_t> replaced;  // pool: the manifest --name named before (still registered)
};

// Choose tiers (cost::choose), write the parts (temp + rename, named by digest; an existing
// identical uncompressed part is kept), then the manifest at out_path.
PlaceResult place(const SplitReader& split, const PlaceRequest& req, const std::string& out_path,
                  const std::function<void(uint64_t bytes_done, uint64_t bytes_total)>& progress = {});

// snap-stat --pool: the pool's side of a placed artifact's pool parts, asked of the pool now:
// per part, its chunks present and missing there, and how many of them other registered
// manifests also name (the deduplication: the bytes this snapshot alone costs the pool).
nlohmann::json pool_view(const PlacedReader& r, const std::string& url = {});  // url: resolve_pool_url's `used`

// snap-stat's view of a placed artifact.
nlohmann::json describe_placed(const PlacedReader& r);
std::string text_placed(const PlacedReader& r);

}  // namespace snap::placed

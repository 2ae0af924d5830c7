// SPDX-License-Identifier: Apache-2.0
// The split: every page of an image classified ZERO / RO / RW / COLD (DESIGN.md §2), with the
// loading order and the page data of RO, RW and COLD packed compactly: runs of adjacent
// pages of one class stay together (one run maps with one mmap), RW and RO runs in
// first-touch order, COLD in address order. Each class's data is its own page-aligned chunk,
// so a later step can put each class on its own tier.
#pragma once
#include "format/container.hpp"
#include "image.hpp"
#include "loadset.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace snap {

enum class PageClass : uint8_t { zero = 0, ro = 1, rw = 2, cold = 3 };
constexpr int kPageClasses = 4;
const char* class_name(PageClass c);  // "zero", "ro", "rw", "cold"

struct ClassRun {
    uint64_t start_page = 0;
    uint64_t pages = 0;
    PageClass cls = PageClass::zero;
    bool operator==(const ClassRun&) const = default;
};

// A run of adjacent non-zero pages of one class, and where its bytes are in the class's
// page-data chunk (in pages from the chunk start).
struct Extent {
    uint64_t image_page = 0;
    uint64_t pages = 0;
    PageClass cls = PageClass::cold;
    uint64_t data_page = 0;
    bool operator==(const Extent&) const = default;
};

// One touched page of the (merged) loading set, in first-touch order.
struct OrderEntry {
    uint64_t page = 0;
    uint32_t rank = 0;
    uint8_t access = 0;
    bool operator==(const OrderEntry&) const = default;
};

struct SplitPlan {
    ImageIdentity image;
    std::vector<ClassRun> runs;      // cover every page, address order, maximal
    std::vector<OrderEntry> order;   // touched pages, first-touch order
    std::vector<Extent> extents;     // RW runs, then RO runs (first-touch order), then COLD (address order)
    std::array<uint64_t, kPageClasses> pages_per_class{};
    nlohmann::json meta = nlohmann::json::object();
};

struct SplitOptions {
    bool assume_written = false;  // a loading set without R/W information: touched pages are RW
    unsigned threads = 0;         // scan threads (0 = one per core); never changes the bytes
};

// The one description of a plan in snapkit(7)'s JSON vocabulary: the image (image_pages,
// image_bytes, page_size_bytes, image_fingerprint), every class's pages, bytes and runs
// (zero_pages, ro_bytes, cold_runs, ...; class_runs in all), extents and touched_pages.
// snap-split's report and snap-stat's description of a split and of a placed artifact are it
// plus what each adds.
nlohmann::json describe_plan(const SplitPlan& plan);

// Threads to use for `requested` (0 = std::thread::hardware_concurrency(), at least 1).
unsigned split_threads(unsigned requested);

// Classify from the image's bytes and a merged loading set (which must name this image).
// progress(done_pages) is called now and then (from the calling thread).
// One pass: opt.threads threads zero-check page ranges into a bitmap (1 bit per page) while,
// unless the image already has its fingerprint, one of them hashes the image in order.
SplitPlan plan_split(const Image& image, const LoadingSet& touched, const SplitOptions& opt,
                     const std::function<void(uint64_t)>& progress = {});

// Pure classification core, testable on bytes: zero[i] tells whether page i is all zero.
SplitPlan classify_pages(const ImageIdentity& image, const std::vector<bool>& zero, const LoadingSet& touched,
                         const SplitOptions& opt);

// Write the split artifact atomically. Returns its digest. before_commit runs once every byte
// is written and may throw to leave no output (snap-split checks the image did not change).
// Page data goes from the image mapping to the file in large writes, in file order, with
// writeback started behind them; the chunk checksums are computed over the same bytes on
// other threads (threads as in SplitOptions). No page data is held in memory of ours.
// `unchanged` (if given) says whether path already held these bytes and was left untouched.
uint64_t write_split(const Image& image, const SplitPlan& plan, const std::string& path, uint64_t parent_digest,
                     const std::function<void()>& before_commit = {}, unsigned threads = 0, bool* unchanged = nullptr);

// Plausibility bound of the plan decoder: an image may have at most kZeroPagesAllowance zero
// pages plus kMaxZeroPagesPerDataPage per page of data (RO, RW, COLD). Real snapshots are far
// below (a 256 GiB guest with 64 MiB of data is at 4096 to 1).
constexpr uint64_t kZeroPagesAllowance = uint64_t{1} << 20;   // 4 GiB of 4 KiB pages
constexpr uint64_t kMaxZeroPagesPerDataPage = uint64_t{1} << 16;

// The plan chunks (IMGI, META, CLAS, ORDR, EXTN) shared by the split and the placed
// artifact: encode into a writer; decode and cross-check (throws BadInput naming the file).
void add_plan_chunks(format::ArtifactWriter& w, const SplitPlan& plan);
SplitPlan decode_plan_chunks(const format::Artifact& a);
std::vector<format::ChunkType> plan_chunk_types();

// A parsed and cross-checked split. Page data checksums are verified by verify_data() (or
// per class by class_data(cls, true)).
class SplitReader {
public:
    explicit SplitReader(const std::string& path);
    // Over a file already opened (a pipe or FIFO can be read only once).
    explicit SplitReader(file::InputFile file);
    const std::string& name() const { return artifact_.name(); }
    const ImageIdentity& image() const { return plan_.image; }
    const SplitPlan& plan() const { return plan_; }
    uint64_t digest() const { return artifact_.digest(); }
    uint64_t parent_digest() const { return artifact_.header().parent_digest; }
    uint32_t page_size() const { return plan_.image.page_size; }
    // The page-data chunk of a class (empty span for ZERO).
    std::span<const std::byte> class_data(PageClass cls, bool verify = false) const;
    // The bytes of one extent.
    std::span<const std::byte> extent_data(const Extent& e) const;
    // File offset of an extent's bytes inside the artifact (page-aligned: mmap-able).
    uint64_t extent_file_offset(const Extent& e) const;
    PageClass class_of(uint64_t page) const;
    void verify_data() const;
    const format::Artifact& artifact() const { return artifact_; }

private:
    format::Artifact artifact_;
    SplitPlan plan_;
    std::array<const format::ChunkEntry*, kPageClasses> data_{};
};

}  // namespace snap

// SPDX-License-Identifier: Apache-2.0
// The restore schedule: each strategy defined once (DESIGN.md §4) — which pages come from
// where, eagerly or on demand, in what order — as pure data that every front-end applies:
// the preload inside the VMM (--exec), snap-restore's fault server (--exec and --serve), and
// the tests. build_plan() is the one definition; a front-end only knows how to put bytes into
// its VMM.
//
// A schedule has up to four layers, applied in this order over the VMM's private mapping of
// the image (--exec):
//   base   what replaces that mapping first: the image itself (kept), one MAP_PRIVATE mapping
//          of a layout file (a sparse file holding pages at their image offsets, holes
//          elsewhere: tiered maps every RO page in place with it), or anonymous memory;
//   ops    layered mappings on top, in address order, never overlapping (faasnap, and tiered
//          when no layout file can be used):
//            anon  anonymous memory (MAP_FIXED): the range reads zero, costs nothing until written;
//            copy  anonymous memory filled eagerly from pieces (a part file, the image, or
//                  nothing for zero pages) before the VMM runs the guest;
//            map   a MAP_PRIVATE mapping of a part file at the op's file offset (in place, no
//                  copy; a write makes a private copy; the part file is never written);
//          every op is one mapping and vm.max_map_count bounds the total, so ops are merged
//          across small gaps (a gap inside a copy op is copied; small zero runs and small map
//          runs fall back to the image underneath, which holds those bytes too);
//   eager  page spans installed with userfaultfd (UFFDIO_COPY / UFFDIO_ZEROPAGE, batched over
//          two threads, one wake) by snap-restore before the guest may run, in this order (reap's
//          working set, tiered's RW pages) — except pages inside huge regions (tiered: copy ops
//          of whole 2 MiB regions the preload fills as one transparent huge page);
//   demand with `demand`, a userfaultfd covers the whole mapping: every page the base and the
//          eager spans do not hold is served on its first touch by snap-restore from the parts
//          (COLD from its tier, zeros for ZERO pages).
// Background spans (prefetch: faasnap's concurrent paging in first-touch order; drain: tiered
// --drain-cold) are pulled in behind the VMM's back.
//
// --serve (Firecracker: guest memory is anonymous memory the VMM owns, already registered)
// cannot map anything in place: it installs `eager` and then `in_place` (the pages exec maps
// in place, first-touch order) — serve_installs() — and serves the rest on demand.
//
// encode()/decode() are the hand-over to the preload (a private, versioned byte format; not
// an artifact).
#pragma once
#include "common/pagerange.hpp"
#include "common/split.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snap::restore {

enum class Strategy : uint32_t { vanilla = 0, reap = 1, faasnap = 2, tiered = 3 };
const char* strategy_name(Strategy s);
std::optional<Strategy> strategy_from_name(std::string_view name);

enum class OpKind : uint8_t { anon = 1, copy = 2, map = 3 };
const char* op_name(OpKind k);

// How a page ends up in memory (for the per-class report): from the image mapping, anonymous,
// copied by the preload, mapped from a part or layout file, installed eagerly over userfaultfd,
// or served over userfaultfd on its first touch.
enum class Mechanism : uint8_t { image = 0, anon = 1, copy = 2, map = 3, install = 4, demand = 5 };
constexpr int kMechanisms = 6;

// What replaces the VMM's mapping of the image before the ops are laid.
enum class Base : uint8_t { image = 0, file = 1, anon = 2 };
const char* base_name(Base b);
const char* mechanism_name(Mechanism m);

constexpr int32_t kImageFile = 0;  // files[0] is always the image
constexpr int32_t kNoFile = -1;    // a copy piece of zeros (nothing to read)

struct PlanFile {
    std::string path;
    bool operator==(const PlanFile&) const = default;
};

// Pages [page, page+pages) of a copy op come from file bytes [file_offset, …) (or are zero).
struct CopyPiece {
    uint64_t page = 0, pages = 0;
    int32_t file = kNoFile;
    uint64_t file_offset = 0;
    bool operator==(const CopyPiece&) const = default;
};

struct Op {
    OpKind kind = OpKind::anon;
    uint64_t first_page = 0, pages = 0;
    int32_t file = kNoFile;     // map: the file
    uint64_t file_offset = 0;   // map: byte offset of first_page's bytes in the file
    uint32_t piece_begin = 0, piece_count = 0;  // copy: pieces[piece_begin, +piece_count)
    bool operator==(const Op&) const = default;
};

// Image pages to pull in behind the VMM's back (faasnap prefetch in first-touch order;
// tiered --drain-cold in address order).
using PageSpan = snap::PageRange;

// A part as the builder needs it: which class, which file, where its bytes start, and
// whether it can be mapped or read directly (uncompressed).
struct PartRef {
    PageClass cls = PageClass::rw;
    std::string path;
    uint64_t offset = 0;
    bool raw = true;  // uncompressed: mappable and readable at offset + data_page × page size
    // An image-order layout file of this part that the front-end can map and register with
    // userfaultfd (on tmpfs or hugetlbfs); empty when there is none or it is unusable.
    std::string layout_path;
    bool in_pool = false;  // held by a pool (not raw): only the fault server can read it
};

struct BuildOptions {
    Strategy strategy = Strategy::vanilla;
    uint64_t gap_pages = 32;      // merge copy ops across image gaps below this; smaller zero/map runs stay on the image
    uint64_t max_mappings = 0;    // 0 = no limit; else grow the gap until the plan fits, or refuse
    bool drain_cold = false;      // tiered: pull COLD pages in after the hot phase
    // tiered: the userfaultfd schedule over one mapping of the RO layout file (false: the
    // layered mappings, one per run — kept to compare them in bench/restore).
    bool uffd = true;
    // tiered (userfaultfd schedule): a 2 MiB region with at least this many RW pages is filled
    // whole as one huge page instead of installing its RW pages one by one (0 = never, the
    // default: a THP's first fault costs 0.2-6.5 ms on hosts with free page reporting, and
    // the installs of a long RW run are shared between threads).
    uint64_t huge_rw_pages = 0;
    // tiered and faasnap: their userfaultfd form, nothing laid over the VMM's memory — the hot
    // pages they would map (tiered's RO, faasnap's loading set) installed eagerly over
    // userfaultfd instead, in first-touch order (faasnap's is then the schedule of its --serve
    // form). For guest memory on hugetlbfs, which stays huge only so: a mapping of a part or
    // layout file elsewhere, or anonymous memory laid over it, would be 4 KiB pages.
    bool uffd_only = false;
};

struct MappingPlan {
    Strategy strategy = Strategy::vanilla;
    uint32_t page_size = 4096;
    uint64_t image_pages = 0;
    uint64_t gap_pages = 0;        // the gap the plan was finally built with
    std::vector<PlanFile> files;   // [0] = image
    Base base = Base::image;
    int32_t base_file = kNoFile;   // Base::file: the layout file (files[base_file]), mapped at image offsets
    bool demand = false;           // a userfaultfd over the whole mapping; snap-restore serves what is missing
    bool huge = false;             // copy ops are 2 MiB regions filled as transparent huge pages (demand plans)
    std::vector<Op> ops;           // address order, disjoint
    std::vector<CopyPiece> pieces;
    std::vector<PageSpan> eager;     // userfaultfd installs before the guest runs, in this order
    std::vector<PageSpan> in_place;  // pages the base or a map op holds in place (first-touch order)
    std::vector<PageSpan> prefetch;  // concurrent, in this order (faasnap)
    std::vector<PageSpan> drain;     // after the hot phase (tiered --drain-cold)
    // pages[class][mechanism]: how each class's pages are served.
    std::array<std::array<uint64_t, kMechanisms>, kPageClasses> pages{};
    uint64_t mappings = 0;         // mappings over the image range once applied (VMAs, estimated)
    uint64_t copy_bytes = 0;       // bytes read into copy ops (zero pieces excluded)
    std::vector<std::string> notes;  // fall-backs the builder took ("cold part is compressed: …")

    nlohmann::json to_json() const;
    // Pages the strategy meant to take from a part but takes from the image (a compressed or
    // pool part under a mapping schedule, runs merged across gaps to fit the mapping budget),
    // per class; faasnap's COLD and everything of vanilla come from the image by design.
    std::array<uint64_t, kPageClasses> fallback_pages() const;
    bool operator==(const MappingPlan&) const = default;
};

// Build the strategy's plan. parts: the placed artifact's parts (any order, one per non-empty
// class). Throws UsageError when max_mappings cannot be met.
MappingPlan build_plan(const SplitPlan& split, std::span<const PartRef> parts, const std::string& image_path,
                       const BuildOptions& opt);

// What --serve installs right after the handshake: eager, then in_place (exec maps those in
// place; Firecracker's anonymous memory cannot), each page once.
std::vector<PageSpan> serve_installs(const MappingPlan& plan);

// What --exec's fault server installs (eager minus the pages the preload fills itself: huge
// regions), and what it must treat as present (in place, and the huge regions). With
// `before_guest` (the VMM waits in mmap() until every install is done: no --overlap) the order
// cannot matter, so the spans come in address order, adjacent ones merged: pages the guest
// first touched apart, but that lie side by side, take one UFFDIO_COPY (a shuffled working set
// otherwise costs an ioctl a page).
std::vector<PageSpan> exec_installs(const MappingPlan& plan, bool before_guest = false);
std::vector<PageSpan> exec_present(const MappingPlan& plan);

// Mappings the ops produce over [0, image_pages): runs that the kernel merges (anonymous
// next to anonymous, one file at contiguous offsets — the image included) count once.
uint64_t count_mappings(const MappingPlan& plan);

// Where page p's bytes come from once the plan is applied: file (kNoFile = zero) and byte
// offset. With the image (file 0) underneath, every page has an answer. Pages a uffd plan
// installs or serves have no file origin here (kDemand): the fault server's source answers.
constexpr int32_t kDemand = -2;
struct PageOrigin {
    int32_t file = kNoFile;
    uint64_t offset = 0;
    bool operator==(const PageOrigin&) const = default;
};
std::vector<PageOrigin> page_origins(const MappingPlan& plan);

// The hand-over to the preload. decode() checks every bound and throws BadInput(name, why).
std::vector<std::byte> encode(const MappingPlan& plan);
MappingPlan decode(std::span<const std::byte> bytes, const std::string& name);

}  // namespace snap::restore

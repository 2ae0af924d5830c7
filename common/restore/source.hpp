// SPDX-License-Identifier: Apache-2.0
// The placed artifact as the restore front-ends see it: the parts as PartRefs for the mapping
// plan, and a PageSource over the parts for the userfaultfd front-end (--serve): ZERO pages
// are zero, every other page comes from its extent's bytes in its class's part (mapped in
// place when uncompressed, decompressed frame by frame otherwise).
#pragma once
#include "common/placed.hpp"
#include "common/restore/plan.hpp"
#include "common/uffd/server.hpp"
#include "common/uffd/source.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <span>
#include <vector>

namespace snap::restore {

std::vector<PartRef> part_refs(const placed::PlacedReader& r);

class PlacedSource : public uffd::PageSource {
public:
    // Opens every part (BadInput naming a missing or short part file). r must outlive this.
    explicit PlacedSource(const placed::PlacedReader& r, const pool::ReadOptions& pool_options = {});
    ~PlacedSource() override;
    PlacedSource(const PlacedSource&) = delete;
    PlacedSource& operator=(const PlacedSource&) = delete;
    uint64_t size_bytes() const override { return size_; }
    uint32_t page_size() const override { return page_size_; }
    uffd::Piece read(uint64_t offset, uint64_t max_bytes, std::byte* scratch) override;
    uint64_t bytes_decompressed() const { return decompressed_; }
    // REAP's working-set fetch and install, for --exec and --serve alike: the hot parts (RW,
    // RO) read once, front to back, in windows of window_bytes (O_DIRECT where the file system
    // takes it, so the page cache is neither used nor polluted; a working set that fits is one
    // window), the next window read while the pages of this one are installed in address order
    // (server.install: one UFFDIO_COPY per contiguous run).
    // Compressed and pool parts go the same way, cut between their frames or chunks (fetched
    // in large pipelines and checked, decompressed straight into the window). Then the ZERO
    // pages of `eager` are installed. Memory: two windows, not the working set (a private copy
    // of a 4 GiB working set costs a fresh page per page before the guest's own: fetching a
    // pool part into fresh memory ran at 0.4-0.66 GB/s here, into reused buffers 0.9-1.7).
    // Returns the pages installed.
    uint64_t install_hot_parts(uffd::FaultServer& server, std::span<const uffd::PageRange> eager,
                               uint64_t window_bytes = uint64_t{16} << 20);
    // Make the hot parts ready to install without I/O, before the VMM starts (the handler's
    // own set-up, like mapping the snapshot file): the RW part's pages mapped into this
    // process's page table (MADV_POPULATE_READ) when it is a file; hot parts that cannot be
    // mapped — in a pool, or compressed — fetched whole into private memory (RW, and RO too
    // with `ro`: pages the schedule installs eagerly because they cannot be mapped in place).
    void populate_rw(bool ro = false);
    // The pool's side of the restore (chunks fetched on demand and ahead, per class), or null
    // when no part is in a pool.
    nlohmann::json pool_json() const;
    // Every part is uncompressed or loaded, or a window is being installed: reads hand out
    // pointers and touch no shared state.
    bool concurrent_reads() const override;
    uint64_t bytes_loaded() const { return loaded_; }

private:
    struct Loaded {
        std::byte* data = nullptr;
        uint64_t bytes = 0;
    };
    struct Span {
        uint64_t first_page, pages;
        int part;             // index into parts_, -1 = zero
        uint64_t part_offset; // raw byte offset of first_page inside the part
    };
    std::vector<Span> spans_;  // image order, covering every page
    std::vector<std::unique_ptr<placed::PartSource>> parts_;
    std::vector<Loaded> loaded_parts_;  // per part: its bytes in private memory (populate_rw, install_hot_parts)
    struct Window {
        int part = -1;  // a hot part install_hot_parts is installing from, its bytes [offset, offset+bytes)
        uint64_t offset = 0, bytes = 0;
        const std::byte* data = nullptr;
    };
    std::vector<Window> windows_;  // the pieces of parts in the window being installed
    bool window_reads_ = false;    // installing a window: every read is a pointer into it
    std::vector<bool> pread_;           // per part: on a file tier, read with pread (no readahead)
    uint64_t loaded_ = 0;
    uint64_t size_;
    uint32_t page_size_;
    uint64_t decompressed_ = 0;
};

}  // namespace snap::restore

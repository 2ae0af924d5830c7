// SPDX-License-Identifier: Apache-2.0
// mkhostile: write artifacts that are well-formed (checksums right) but claim absurd sizes,
// for the "bounded by reality" tests: every reader must end quickly with little memory.
//   mkhostile DIR
// DIR/huge.ls       a loading set of a few hundred bytes claiming a 2^46-byte image
// DIR/resealed.ls   a real small loading set whose IMGI size was patched to 2^46, resealed
// DIR/huge.split    a split of a few KiB claiming a 1 TiB image (one ZERO run, a few touches)
// DIR/huge.placed   a placed manifest of a few KiB claiming the same 1 TiB image
// DIR/claim.hdr     a 64-byte header (checksum right) claiming a 1 TiB file: a stream head
#include "../fuzz/reseal.hpp"
#include "common/loadset.hpp"
#include "common/placed.hpp"
#include "common/split.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: mkhostile DIR\n");
        return 2;
    }
    const std::string dir = argv[1];
    using namespace snap;
    try {
        LoadingSet ls;
        ls.image = {uint64_t{1} << 46, 4096, 0x1234};
        ls.method = "pagemap";
        ls.knows_writes = true;
        for (uint64_t i = 0; i < 3; ++i) ls.touches.push_back({(uint64_t{1} << 34) - 1 - i, i, static_cast<uint32_t>(i), kAccessRead});
        write_loadset(ls, dir + "/huge.ls");

        // The reported bug, reproduced the way a resealing fuzzer found it.
        LoadingSet small;
        small.image = {64 * 4096, 4096, 0x5678};
        small.method = "pagemap";
        small.touches = {{1, 0, 0, kAccessRead}, {5, 0, 1, kAccessWrite}};
        write_loadset(small, dir + "/resealed.ls");
        std::vector<uint8_t> d;
        {
            std::ifstream f(dir + "/resealed.ls", std::ios::binary);
            d.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        }
        size_t imgi = fuzz::chunk_offset(d, "IMGI");
        if (imgi == SIZE_MAX) throw std::runtime_error("no IMGI chunk");
        fuzz::store_u64(&d[imgi], uint64_t{1} << 46);
        fuzz::reseal(d);
        {
            std::ofstream f(dir + "/resealed.ls", std::ios::binary | std::ios::trunc);
            f.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
        }

        // A stream head: huge.ls's header claiming a 1 TiB file, its checksum right.
        {
            std::ifstream f(dir + "/huge.ls", std::ios::binary);
            std::vector<uint8_t> h(64);
            f.read(reinterpret_cast<char*>(h.data()), 64);
            fuzz::store_u64(&h[40], uint64_t{1} << 40);
            fuzz::store_u64(&h[56], hash::xxh3(h.data(), 56));
            std::ofstream o(dir + "/claim.hdr", std::ios::binary | std::ios::trunc);
            o.write(reinterpret_cast<const char*>(h.data()), 64);
        }

        SplitPlan plan;
        plan.image = {uint64_t{1} << 40, 4096, 0x9abc};
        const uint64_t pages = plan.image.pages();
        plan.runs = {{0, pages, PageClass::zero}};
        plan.pages_per_class[0] = pages;
        for (uint64_t i = 0; i < 4; ++i) plan.order.push_back({pages - 1 - i * 1000, static_cast<uint32_t>(i), kAccessRead});
        {
            format::ArtifactWriter w(format::Kind::split, 4096, 1);
            add_plan_chunks(w, plan);
            for (const char* t : {"PGRW", "PGRO", "PGCL"})
                w.add_chunk(format::chunk_type(*reinterpret_cast<const char(*)[5]>(t)), std::vector<std::byte>{},
                            format::kChunkRequired | format::kChunkPageAligned);
            file::AtomicOutput out(dir + "/huge.split");
            w.finish(out);
            out.commit();
        }
        placed::Manifest m;
        tier::TierSpec t;
        t.kind = tier::TierKind::dram;
        t.location = "/tmp";
        m.tiers.push_back(t);
        placed::write_manifest(plan, m, 2, dir + "/huge.placed");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mkhostile: %s\n", e.what());
        return 1;
    }
    return 0;
}

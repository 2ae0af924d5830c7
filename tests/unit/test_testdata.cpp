// SPDX-License-Identifier: Apache-2.0
// The committed fixtures of testdata/ (testdata/README.md) are what they claim to be: each
// loading set carries its method's flags, all name the image beside them, the split is the
// split of that image by pagemap.ls, and the placed manifest is the placement of that split,
// its part files here holding the bytes its digests promise. (cli/testdata checks that they
// are byte for byte what scripts/testdata.sh makes.)
#include "testdata.hpp"

#include "common/hash.hpp"
#include "common/image.hpp"
#include "common/loadset.hpp"
#include "common/placed.hpp"
#include "common/split.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace snap;

namespace {

std::vector<char> slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("testdata: a loading set of each method, all of one image") {
    Image image(test::testdata("image.mem"));
    CHECK(image.pages() == 256);
    struct Expect {
        const char* method;
        bool knows_writes, has_time;
    };
    const LoadingSet pagemap = read_loadset(test::testdata("pagemap.ls"));
    for (const Expect& e : {Expect{"mincore", false, false}, Expect{"pagemap", true, false}, Expect{"uffd", true, true},
                            Expect{"bpf", true, true}}) {
        CAPTURE(e.method);
        LoadingSet ls = read_loadset(test::testdata(std::string(e.method) + ".ls"));
        CHECK(ls.method == e.method);
        CHECK(ls.knows_writes == e.knows_writes);
        CHECK(ls.has_time == e.has_time);
        CHECK(ls.image == image.identity());
        REQUIRE(ls.touches.size() == pagemap.touches.size());
        CHECK(ls.touches.size() > 20);
        if (!e.knows_writes) CHECK(ls.written_pages() == 0);
        else CHECK(ls.written_pages() == pagemap.written_pages());
        CHECK(ls.written_pages() + ls.read_pages() == ls.touches.size());
        // Scan-round methods share ranks; exact ones give every touch its own, times increasing.
        const bool exact = e.has_time;
        CHECK((ls.touches.back().rank + 1 == ls.touches.size()) == exact);
        for (size_t i = 1; exact && i < ls.touches.size(); ++i) CHECK(ls.touches[i].time_ns > ls.touches[i - 1].time_ns);
    }
}

TEST_CASE("testdata: pagemap.split is the split of image.mem by pagemap.ls") {
    Image image(test::testdata("image.mem"));
    uint64_t ls_digest = 0;
    LoadingSet ls = read_loadset(test::testdata("pagemap.ls"), &ls_digest);
    SplitReader split(test::testdata("pagemap.split"));
    split.verify_data();
    CHECK(split.parent_digest() == ls_digest);
    CHECK(split.image() == image.identity());
    auto plan = plan_split(image, ls, {});
    CHECK(split.plan().runs == plan.runs);
    CHECK(split.plan().extents == plan.extents);
    CHECK(split.plan().order == plan.order);
    for (size_t c = 0; c < kPageClasses; ++c) CHECK(plan.pages_per_class[c] > 0);  // every class is there
    for (const auto& e : split.plan().extents) {
        auto d = split.extent_data(e);
        CHECK(std::memcmp(d.data(), image.page(e.image_page), d.size()) == 0);
    }
    // Without read/write information touched pages are RO, as snap-split says.
    auto mincore = plan_split(image, read_loadset(test::testdata("mincore.ls")), {});
    CHECK(mincore.pages_per_class[static_cast<size_t>(PageClass::rw)] == 0);
}

TEST_CASE("testdata: placed/image.placed places pagemap.split; its parts are beside it") {
    SplitReader split(test::testdata("pagemap.split"));
    placed::PlacedReader r(test::testdata("placed/image.placed"));
    CHECK(r.parent_digest() == split.digest());
    CHECK(r.plan().runs == split.plan().runs);
    CHECK(r.plan().extents == split.plan().extents);
    REQUIRE(r.parts().size() == 3);
    bool compressed = false;
    for (const auto& p : r.parts()) {
        // The manifest names the fixed place the generator used (testdata/README.md); the same
        // file, by name, is committed beside it.
        CAPTURE(p.path);
        CHECK(p.path.rfind("/tmp/snapkit-testdata/placed/", 0) == 0);
        const std::string here = test::testdata("placed/" + std::filesystem::path(p.path).filename().string());
        auto bytes = slurp(here);
        CHECK(bytes.size() == p.stored_bytes);
        if (p.compression == placed::Compression::none) {
            CHECK(hash::xxh3(bytes.data(), bytes.size()) == p.digest);
            auto data = split.class_data(p.cls);
            CHECK(hash::xxh3(data) == p.digest);
        } else {
            compressed = true;
            CHECK(p.frames.size() > 1);
        }
    }
    CHECK(compressed);
}

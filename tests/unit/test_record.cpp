// SPDX-License-Identifier: Apache-2.0
// snap-record's pure logic: rank assignment across scan rounds (TouchTable).
#include "snap-record/touch_table.hpp"

#include <doctest/doctest.h>

using snap::Touch;
using snap::kAccessRead;
using snap::kAccessWrite;
using snap::record::TouchTable;

TEST_CASE("touch table: rank = index of the first scan that saw the page") {
    TouchTable t(16);
    CHECK(t.begin_scan(100) == 0);
    t.mark(3, 2, kAccessRead);  // pages 3, 4
    CHECK(t.begin_scan(200) == 1);
    t.mark(3, 1, kAccessRead);  // seen again: keeps rank 0
    t.mark(9, 1, kAccessWrite);
    CHECK(t.begin_scan(300) == 2);  // an empty round still counts
    CHECK(t.begin_scan(400) == 3);
    t.mark(4, 1, kAccessWrite);  // read first, written later: rank 0, both bits
    t.mark(1, 1, kAccessRead);
    auto v = t.touches();
    REQUIRE(v.size() == 4);
    CHECK(v[0] == Touch{3, 100, 0, kAccessRead});
    CHECK(v[1] == Touch{4, 100, 0, kAccessRead | kAccessWrite});
    CHECK(v[2] == Touch{9, 200, 1, kAccessWrite});
    CHECK(v[3] == Touch{1, 400, 3, kAccessRead});
    CHECK(t.scans() == 4);
    CHECK(t.touched() == 4);
}

TEST_CASE("touch table: bounds") {
    TouchTable t(8);
    t.mark(0, 1, kAccessRead);  // before any scan: ignored
    CHECK(t.touched() == 0);
    t.begin_scan(0);
    t.mark(6, 100, kAccessRead);   // clipped at the end
    t.mark(8, 1, kAccessRead);     // past the end
    t.mark(UINT64_MAX - 1, 5, kAccessRead);  // no overflow
    CHECK(t.touched() == 2);
    CHECK(t.seen(6));
    CHECK(t.seen(7));
    CHECK_FALSE(t.seen(8));
}

TEST_CASE("touch table: output survives LoadingSet::normalize unchanged") {
    TouchTable t(1000);
    for (uint32_t s = 0; s < 5; ++s) {
        t.begin_scan(s * 1000);
        for (uint64_t p = 999 - s * 100; p > 999 - (s + 1) * 100; --p) t.mark(p, 1, s % 2 ? kAccessWrite : kAccessRead);
    }
    snap::LoadingSet ls;
    ls.touches = t.touches();
    auto before = ls.touches;
    ls.normalize();
    CHECK(ls.touches == before);
}

// SPDX-License-Identifier: Apache-2.0
// snap-stat's pure pieces: the SVG page map's cell grid (bounded by cells whatever the image,
// power-of-two pages a cell, counts that add up), its text escaping and axis labels, and the
// JSON views of --map and --list against the text ones, on the committed fixtures.
#include "testdata.hpp"

#include "common/loadset.hpp"
#include "common/split.hpp"
#include "snap-stat/stat.hpp"
#include "snap-stat/svg.hpp"

#include <doctest/doctest.h>

#include <numeric>
#include <string>

using namespace snap;
using namespace snap::stat_tool;

TEST_CASE("stat svg: the grid is bounded by cells and its counts add up") {
    // 64 TiB of 4 KiB pages at the default 128 x 64: 2^34 pages, 2^21 a cell, 64 rows.
    auto g = svg::make_grid(uint64_t{1} << 34, 0, 0, 4);
    CHECK(g.width == 128);
    CHECK(g.pages_per_cell == (uint64_t{1} << 21));
    CHECK(g.rows == 64);
    CHECK(g.counts.size() == 128 * 64 * 4);
    // Not a power of two of cells: pages a cell rounds up to one, rows shrink.
    g = svg::make_grid(100000, 0, 0, 4);
    CHECK(g.pages_per_cell == 16);
    CHECK(g.rows == 49);  // ceil(100000 / (16 * 128))
    // A small image: one page a cell, about twice as wide as high.
    g = svg::make_grid(256, 0, 0, 4);
    CHECK(g.pages_per_cell == 1);
    CHECK(g.width == 32);
    CHECK(g.rows == 8);
    // Explicit sizes are kept.
    g = svg::make_grid(256, 10, 5, 2);
    CHECK(g.width == 10);
    CHECK(g.pages_per_cell == 8);  // 256 / 50 = 5.12 -> 8
    CHECK(g.rows == 4);            // ceil(32 cells / 10)
    // add_pages spreads a run over the cells it covers, clipped to the image.
    g = svg::make_grid(100, 4, 4, 2);  // 8 pages a cell, 13 cells
    svg::add_pages(g, 2, 5, 20, 1);    // pages 5..24: cells 0 (3), 1 (8), 2 (8), 3 (1)
    CHECK(g.counts[0 * 2 + 1] == 3);
    CHECK(g.counts[1 * 2 + 1] == 8);
    CHECK(g.counts[2 * 2 + 1] == 8);
    CHECK(g.counts[3 * 2 + 1] == 1);
    svg::add_pages(g, 2, 95, 1000, 0);  // clipped at page 100
    CHECK(g.counts[11 * 2 + 0] == 1);
    CHECK(g.counts[12 * 2 + 0] == 4);
    CHECK(std::accumulate(g.counts.begin(), g.counts.end(), uint64_t{0}) == 25);
}

TEST_CASE("stat svg: names and labels") {
    CHECK(svg::xml_text("a<b>&\"c\"") == "a&lt;b&gt;&amp;&quot;c&quot;");
    CHECK(svg::xml_text("caf\xC3\xA9") == "caf\xC3\xA9");             // UTF-8 kept
    CHECK(svg::xml_text("x\xFFy") == "x\xEF\xBF\xBDy");               // a stray byte replaced
    CHECK(svg::xml_text("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate is not UTF-8
    CHECK(svg::xml_text("tab\there") == "tab?here");
    CHECK(svg::offset_label(0) == "0");
    CHECK(svg::offset_label(4096) == "4 KiB");
    CHECK(svg::offset_label(uint64_t{3} << 29) == "1.5 GiB");
    CHECK(svg::offset_label(uint64_t{16} << 20) == "16 MiB");
}

TEST_CASE("stat: --map and --list as JSON say what the text says") {
    SplitReader s(test::testdata("pagemap.split"));
    auto j = map_split_json(s.plan(), 16, 4, "split");
    auto text = map_split(s.plan(), 16, 4);
    CHECK(j["kind"] == "split-map");
    CHECK(j["cell_pages"] == 4);
    REQUIRE(j["cells"].size() == 64);
    const std::string glyphs = ".-rW";
    const char* names[] = {"zero", "cold", "ro", "rw"};
    for (size_t i = 0; i < 64; ++i) CHECK(j["cells"][i] == names[glyphs.find(text[i / 16][i % 16])]);
    auto l = list_split_json(s.plan(), "split");
    CHECK(l["runs"].size() == s.plan().runs.size());
    uint64_t pages = 0;
    for (auto& r : l["runs"]) pages += r["run_pages"].get<uint64_t>();
    CHECK(pages == 256);

    LoadingSet ls = read_loadset(test::testdata("pagemap.ls"));
    auto lt = list_loadset_json(ls);
    REQUIRE(lt["touches"].size() == ls.touches.size());
    CHECK(lt["touches"][0]["page"] == ls.touches[0].page);
    auto mj = map_loadset_json(ls, 64, 16);
    CHECK(mj["cells"].size() == 256 / mj["cell_pages"].get<uint64_t>());
}

TEST_CASE("stat svg: a split's picture holds its classes, its order panel and nothing per page") {
    SplitReader s(test::testdata("pagemap.split"));
    const std::string pic = svg_split(s.plan(), "a<b>.split", "split", 0, 0);
    CHECK(pic.rfind("<?xml", 0) == 0);
    CHECK(pic.find("a&lt;b&gt;.split: split of a 1 MiB image, 256 pages of 4 KiB") != std::string::npos);
    for (const char* c : {"zero", "cold", "ro", "rw"})
        CHECK(pic.find(std::string("<tspan class=\"b\">") + c + "</tspan>") != std::string::npos);
    CHECK(pic.find("loading order") != std::string::npos);
    CHECK(pic.find("</svg>\n") == pic.size() - 7);
}

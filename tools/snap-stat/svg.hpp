// SPDX-License-Identifier: Apache-2.0
// snap-stat --svg: a page map drawn as SVG, written by hand as text (the format is simple; no
// library). A figure is one or more page maps side by side (cells of pages, each cell a small
// stacked bar of the share of its pages per category: a cell 10% RW shows a tenth of red, not
// a whole red cell), an optional loading-order panel to their right whose rows line up with the
// maps' rows, a legend, an axis scale in image offsets, and a title. Its size grows with the
// number of cells and order bins, never with the number of pages.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace snap::stat_tool::svg {

struct Category {
    std::string name;    // "rw", "read", "only A": what the legend and a test look for
    std::string colour;  // "#c8312b"
    std::string detail;  // legend text after the name: "18 pages (72 KiB, 7.0%)"
};

// Cells of pages in address order, `width` to a row; counts[cell * categories + c] pages of
// category c in that cell (the last cell may hold fewer than pages_per_cell pages).
struct CellGrid {
    uint64_t image_pages = 0;
    uint64_t pages_per_cell = 1;
    unsigned width = 1, rows = 1;
    std::vector<uint64_t> counts;
};

// Cell geometry for an image: pages_per_cell a power of two (so that rows start at round
// offsets), at most width_cells x rows cells; a small image gets a narrower grid (about twice
// as wide as high) rather than one or two long rows. width_cells/rows 0: 128 x 64.
CellGrid make_grid(uint64_t image_pages, unsigned width_cells, unsigned rows, size_t categories);
// Add `pages` pages of category c starting at page `start` (clipped to the image).
void add_pages(CellGrid& g, size_t categories, uint64_t start, uint64_t pages, size_t c);

struct MapPanel {
    std::string title;            // above the map, for side-by-side maps ("" for a single one)
    std::vector<Category> legend;  // categories of this map's counts, in stacking order (top first)
    CellGrid grid;
};

// The loading order: touched pages in first-touch order, each with a category index into
// `legend`; x is the position in the order (0 .. n-1, per series scaled to the panel's width),
// y the page's image offset on the maps' scale. A bin holding touches of several categories
// shows the one listed last in `legend` (the most telling: written over read).
struct OrderSeries {
    std::vector<std::pair<uint64_t, uint8_t>> touches;  // page, category
};
struct OrderPanel {
    std::string title;
    std::vector<Category> legend;
    std::vector<OrderSeries> series;
    std::string x_label;
};

struct Figure {
    std::string title;
    std::string subtitle;
    uint32_t page_size = 4096;
    std::vector<MapPanel> maps;  // one, or two side by side (same geometry)
    bool has_order = false;
    OrderPanel order;
    std::vector<std::string> notes;  // lines under the legend
};

std::string render(const Figure& f);

// Text safe inside an XML element or attribute: & < > " escaped, invalid UTF-8 and control
// characters replaced (a file name may hold any bytes).
std::string xml_text(const std::string& s);
// An image offset for an axis: "0", "512 KiB", "16 MiB", "1.5 GiB".
std::string offset_label(uint64_t bytes);

}  // namespace snap::stat_tool::svg

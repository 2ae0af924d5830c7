// SPDX-License-Identifier: Apache-2.0
// snap-stat: what each mode prints (describe, --list, --map, --svg, --compare) and run().
#include "stat.hpp"

#include "svg.hpp"

#include "common/error.hpp"
#include "common/format/container.hpp"
#include "common/hash.hpp"
#include "common/image.hpp"
#include "common/tier.hpp"
#include "common/placed.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

namespace snap::stat_tool {

namespace {

std::string human_bytes(uint64_t b) { return tier::format_size(b); }

std::string pct(uint64_t part, uint64_t whole) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%5.1f%%", whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
    return buf;
}

uint64_t count_runs(std::vector<uint64_t> pages) {
    std::sort(pages.begin(), pages.end());
    uint64_t runs = 0;
    for (size_t i = 0; i < pages.size(); ++i)
        if (i == 0 || pages[i] != pages[i - 1] + 1) ++runs;
    return runs;
}

std::vector<std::string> render_cells(const std::vector<int>& level, const char* glyphs, unsigned width) {
    std::vector<std::string> lines;
    for (size_t i = 0; i < level.size(); i += width) {
        std::string line;
        for (size_t j = i; j < std::min(level.size(), i + width); ++j) line += glyphs[level[j]];
        lines.push_back(line);
    }
    return lines;
}

uint64_t cell_pages(uint64_t pages, unsigned width, unsigned rows) {
    uint64_t cells = uint64_t{std::max(1u, width)} * std::max(1u, rows);
    return std::max<uint64_t>(1, (pages + cells - 1) / cells);
}

}  // namespace

nlohmann::json describe_loadset(const LoadingSet& ls) {
    std::vector<uint64_t> pages;
    pages.reserve(ls.touches.size());
    uint64_t last_ns = 0;
    for (auto& t : ls.touches) {
        pages.push_back(t.page);
        last_ns = std::max(last_ns, t.time_ns);
    }
    nlohmann::json j = {
        {"kind", "loadset"},
        {"method", ls.method},
        {"touched_pages", ls.touches.size()},
        {"read_pages", ls.read_pages()},
        {"written_pages", ls.written_pages()},
        {"writes_known", ls.knows_writes},
        {"timed", ls.has_time},
        {"touched_runs", count_runs(pages)},
        {"ranks", ls.touches.empty() ? 0 : ls.touches.back().rank + 1},
        {"image_pages", ls.image.pages()},
        {"image_bytes", ls.image.size_bytes},
        {"page_size_bytes", ls.image.page_size},
        {"image_fingerprint", hash::to_hex(ls.image.fingerprint)},
        {"meta", ls.meta},
    };
    if (ls.has_time) j["last_touch_ns"] = last_ns;
    return j;
}

nlohmann::json describe_split(const SplitPlan& plan) {
    nlohmann::json j = {{"kind", "split"}};
    j.update(describe_plan(plan));  // common/split.hpp: the one description of a plan
    j["meta"] = plan.meta;
    return j;
}

nlohmann::json compare_loadsets(const LoadingSet& a, const LoadingSet& b) {
    if (!(a.image == b.image)) throw UsageError("the two loading sets were recorded against different images");
    // Merge the two touch lists sorted by page: the work is the pages touched, not the image
    // size the artifacts claim.
    auto by_page = [](const LoadingSet& ls) {
        std::vector<std::pair<uint64_t, bool>> v;  // page, written
        v.reserve(ls.touches.size());
        for (auto& t : ls.touches) v.push_back({t.page, (t.access & kAccessWrite) != 0});
        std::sort(v.begin(), v.end());
        return v;
    };
    const auto pa = by_page(a), pb = by_page(b);
    uint64_t both = 0, only_a = 0, only_b = 0, w_both = 0, w_a = 0, w_b = 0;
    for (auto& x : pa) w_a += x.second;
    for (auto& x : pb) w_b += x.second;
    for (size_t i = 0, j = 0; i < pa.size() || j < pb.size();) {
        if (j == pb.size() || (i < pa.size() && pa[i].first < pb[j].first)) {
            ++only_a, ++i;
        } else if (i == pa.size() || pb[j].first < pa[i].first) {
            ++only_b, ++j;
        } else {
            ++both;
            if (pa[i].second && pb[j].second) ++w_both;
            ++i, ++j;
        }
    }
    uint64_t uni = both + only_a + only_b;
    uint64_t smaller = std::min(a.touches.size(), b.touches.size());
    uint64_t w_uni = w_a + w_b - w_both;
    return {
        {"kind", "loadset-comparison"},
        {"a_pages", a.touches.size()},
        {"b_pages", b.touches.size()},
        {"intersection_pages", both},
        {"union_pages", uni},
        {"only_a_pages", only_a},
        {"only_b_pages", only_b},
        {"jaccard", uni ? static_cast<double>(both) / static_cast<double>(uni) : 1.0},
        {"overlap", smaller ? static_cast<double>(both) / static_cast<double>(smaller) : 1.0},
        {"written_intersection_pages", w_both},
        {"written_jaccard", w_uni ? static_cast<double>(w_both) / static_cast<double>(w_uni) : 1.0},
        {"a_method", a.method},
        {"b_method", b.method},
    };
}

nlohmann::json compare_splits(const SplitPlan& a, const SplitPlan& b) {
    if (a.image.pages() != b.image.pages() || a.image.page_size != b.image.page_size)
        throw UsageError("the two splits describe images of different sizes");
    // matrix[i][j]: pages of class i in A and class j in B.
    std::array<std::array<uint64_t, kPageClasses>, kPageClasses> m{};
    size_t ia = 0, ib = 0;
    uint64_t p = 0, pages = a.image.pages();
    while (p < pages) {
        const auto& ra = a.runs[ia];
        const auto& rb = b.runs[ib];
        uint64_t end = std::min(ra.start_page + ra.pages, rb.start_page + rb.pages);
        m[static_cast<int>(ra.cls)][static_cast<int>(rb.cls)] += end - p;
        p = end;
        if (p == ra.start_page + ra.pages) ++ia;
        if (p == rb.start_page + rb.pages) ++ib;
    }
    uint64_t same = 0;
    nlohmann::json matrix = nlohmann::json::object();
    for (int i = 0; i < kPageClasses; ++i) {
        same += m[i][i];
        nlohmann::json row = nlohmann::json::object();
        for (int j = 0; j < kPageClasses; ++j) row[class_name(static_cast<PageClass>(j))] = m[i][j];
        matrix[class_name(static_cast<PageClass>(i))] = row;
    }
    return {
        {"kind", "split-comparison"},
        {"image_pages", pages},
        {"same_class_pages", same},
        {"agreement", static_cast<double>(same) / static_cast<double>(pages)},
        {"same_image", a.image.fingerprint == b.image.fingerprint},
        {"matrix", matrix},
    };
}

namespace {

// The cells of --map: per cell the hottest class present (an index into the glyphs/names).
struct LevelMap {
    uint64_t pages_per_cell = 1;
    std::vector<int> level;
};

LevelMap split_levels(const SplitPlan& plan, unsigned width, unsigned rows) {
    const uint64_t pages = plan.image.pages(), per = cell_pages(pages, width, rows);
    LevelMap m{per, std::vector<int>((pages + per - 1) / per, 0)};
    // zero < cold < ro < rw: the hottest class present in a cell is shown.
    static const int rank_of[] = {0, 2, 3, 1};
    for (auto& r : plan.runs)
        for (uint64_t c = r.start_page / per; c <= (r.start_page + r.pages - 1) / per; ++c)
            m.level[c] = std::max(m.level[c], rank_of[static_cast<int>(r.cls)]);
    return m;
}

LevelMap loadset_levels(const LoadingSet& ls, unsigned width, unsigned rows) {
    const uint64_t pages = ls.image.pages(), per = cell_pages(pages, width, rows);
    LevelMap m{per, std::vector<int>((pages + per - 1) / per, 0)};
    for (auto& t : ls.touches) m.level[t.page / per] = std::max(m.level[t.page / per], (t.access & kAccessWrite) ? 2 : 1);
    return m;
}

nlohmann::json map_json(const LevelMap& m, const char* const* names, unsigned width, const std::string& kind,
                        const ImageIdentity& image) {
    nlohmann::json cells = nlohmann::json::array();
    for (int l : m.level) cells.push_back(names[l]);
    const uint64_t n = m.level.size();
    return {
        {"kind", kind + "-map"},
        {"row_cells", width},
        {"rows", (n + width - 1) / width},
        {"cell_pages", m.pages_per_cell},
        {"image_pages", image.pages()},
        {"page_size_bytes", image.page_size},
        {"cells", std::move(cells)},
    };
}

const char* access_name(uint8_t access) {
    static const char* acc[] = {"", "R", "W", "RW"};
    return acc[access & 3];
}

}  // namespace

std::vector<std::string> map_split(const SplitPlan& plan, unsigned width, unsigned rows) {
    return render_cells(split_levels(plan, width, rows).level, ".-rW", width);
}

std::vector<std::string> map_loadset(const LoadingSet& ls, unsigned width, unsigned rows) {
    return render_cells(loadset_levels(ls, width, rows).level, ".rW", width);
}

nlohmann::json map_split_json(const SplitPlan& plan, unsigned width, unsigned rows, const std::string& kind) {
    static const char* names[] = {"zero", "cold", "ro", "rw"};
    return map_json(split_levels(plan, width, rows), names, width, kind, plan.image);
}

nlohmann::json map_loadset_json(const LoadingSet& ls, unsigned width, unsigned rows) {
    static const char* names[] = {"untouched", "read", "written"};
    static const char* names_unknown[] = {"untouched", "touched", "written"};
    return map_json(loadset_levels(ls, width, rows), ls.knows_writes ? names : names_unknown, width, "loadset", ls.image);
}

nlohmann::json list_loadset_json(const LoadingSet& ls) {
    nlohmann::json touches = nlohmann::json::array();
    for (auto& t : ls.touches)
        touches.push_back({{"page", t.page}, {"access", access_name(t.access)}, {"rank", t.rank}, {"time_ns", t.time_ns}});
    return {
        {"kind", "loadset-list"},
        {"image_pages", ls.image.pages()},
        {"page_size_bytes", ls.image.page_size},
        {"touches", std::move(touches)},
    };
}

nlohmann::json list_split_json(const SplitPlan& plan, const std::string& kind) {
    nlohmann::json runs = nlohmann::json::array();
    for (auto& r : plan.runs) runs.push_back({{"start_page", r.start_page}, {"run_pages", r.pages}, {"class", class_name(r.cls)}});
    return {
        {"kind", kind + "-list"},
        {"image_pages", plan.image.pages()},
        {"page_size_bytes", plan.image.page_size},
        {"runs", std::move(runs)},
    };
}

// --- pictures --------------------------------------------------------------------------------

namespace {

// Colours: a light grey for what holds nothing of interest, a muted blue for COLD, amber for
// read-only, red for written (the hotter, the warmer); comparisons use the Okabe-Ito colours,
// which colour-blind readers tell apart.
constexpr const char* kGrey = "#e3e3e3";
constexpr const char* kDarkGrey = "#8a8a8a";
constexpr const char* kCold = "#94b6d6";
constexpr const char* kRead = "#f0a032";
constexpr const char* kWritten = "#c8312b";
constexpr const char* kOnlyA = "#0072b2";
constexpr const char* kOnlyB = "#e69f00";
constexpr const char* kBoth = "#009e73";

std::string with_commas(uint64_t v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
    return s;
}

std::string pages_words(uint64_t n) { return with_commas(n) + (n == 1 ? " page" : " pages"); }

std::string share(uint64_t pages, uint64_t whole, uint32_t page_size) {
    if (!pages) return "0 pages";
    char b[96];
    std::snprintf(b, sizeof b, "%s (%s, %.1f%%)", pages_words(pages).c_str(), svg::offset_label(pages * page_size).c_str(),
                  whole ? 100.0 * static_cast<double>(pages) / static_cast<double>(whole) : 0.0);
    return b;
}

// A ratio to four decimals that says 1 only when it is 1 (65,535 of 65,536 is "> 0.9999").
std::string ratio_words(double r, bool exact_one) {
    char b[32];
    if (!exact_one && r > 0.99995) return "> 0.9999";
    std::snprintf(b, sizeof b, "%.4f", r);
    return b;
}

// A panel title: the file's base name, shortened to about `px` pixels of text.
std::string short_name(const std::string& name, double px) {
    auto slash = name.rfind('/');
    std::string base = slash == std::string::npos || slash + 1 == name.size() ? name : name.substr(slash + 1);
    const size_t max_chars = static_cast<size_t>(std::max(8.0, px / 7.2));
    if (base.size() > max_chars) base = base.substr(0, max_chars - 3) + "...";
    return base;
}

std::string image_words(const ImageIdentity& im) {
    return svg::offset_label(im.size_bytes) + " image, " + pages_words(im.pages()) + " of " + svg::offset_label(im.page_size);
}

// Split classes on the map, top of a cell first.
constexpr PageClass kMapOrder[] = {PageClass::rw, PageClass::ro, PageClass::cold, PageClass::zero};
size_t map_index(PageClass c) {
    for (size_t i = 0; i < 4; ++i)
        if (kMapOrder[i] == c) return i;
    return 3;
}
const char* class_colour(PageClass c) {
    switch (c) {
        case PageClass::rw: return kWritten;
        case PageClass::ro: return kRead;
        case PageClass::cold: return kCold;
        default: return kGrey;
    }
}

svg::MapPanel split_panel(const SplitPlan& plan, unsigned width, unsigned rows, const std::string& title) {
    svg::MapPanel m;
    m.title = title;
    const uint64_t pages = plan.image.pages();
    for (PageClass c : kMapOrder)
        m.legend.push_back({class_name(c), class_colour(c), share(plan.pages_per_class[static_cast<int>(c)], pages, plan.image.page_size)});
    m.grid = svg::make_grid(pages, width, rows, 4);
    for (auto& r : plan.runs) svg::add_pages(m.grid, 4, r.start_page, r.pages, map_index(r.cls));
    return m;
}

PageClass class_at(const SplitPlan& plan, uint64_t page) {
    auto it = std::upper_bound(plan.runs.begin(), plan.runs.end(), page,
                               [](uint64_t p, const ClassRun& r) { return p < r.start_page; });
    return it == plan.runs.begin() ? PageClass::zero : std::prev(it)->cls;
}

// The order panel of a split: its touched pages in first-touch order, coloured by class.
void split_order(svg::Figure& f, const SplitPlan& plan) {
    f.has_order = true;
    f.order.title = "loading order";
    std::array<uint64_t, 3> n{};
    svg::OrderSeries s;
    s.touches.reserve(plan.order.size());
    for (auto& e : plan.order) {
        const PageClass c = class_at(plan, e.page);
        const uint8_t k = c == PageClass::rw ? 2 : c == PageClass::ro ? 1 : 0;
        ++n[k];
        s.touches.push_back({e.page, k});
    }
    // Only the classes the order holds (a touched page of ZERO is rare).
    if (n[0]) f.order.legend.push_back({"zero", kDarkGrey, pages_words(n[0])});
    else
        for (auto& t : s.touches) --t.second;  // the legend's indices shift down by one
    f.order.legend.push_back({"ro", kRead, pages_words(n[1])});
    f.order.legend.push_back({"rw", kWritten, pages_words(n[2])});
    f.order.series.push_back(std::move(s));
    f.order.x_label = "first touches, in order";
}

}  // namespace

std::string svg_split(const SplitPlan& plan, const std::string& name, const std::string& kind, unsigned width, unsigned rows) {
    svg::Figure f;
    f.page_size = plan.image.page_size;
    f.title = name + ": " + kind + " of a " + image_words(plan.image);
    f.subtitle = with_commas(plan.order.size()) + " pages in the loading order; page map by class (ZERO all zero, COLD "
                 "untouched, RO read only, RW written)";
    f.maps.push_back(split_panel(plan, width, rows, "page classes"));
    split_order(f, plan);
    f.notes.push_back("loading order: x = position among the first touches, y = the page's offset on the map's scale");
    if (plan.meta.contains("touched_class_note") && plan.meta["touched_class_note"].is_string())
        f.notes.push_back(plan.meta["touched_class_note"].get<std::string>());
    return svg::render(f);
}

std::string svg_loadset(const LoadingSet& ls, const std::string& name, unsigned width, unsigned rows) {
    svg::Figure f;
    f.page_size = ls.image.page_size;
    const uint64_t pages = ls.image.pages(), n = ls.touches.size(), w = ls.written_pages();
    f.title = name + ": loading set (" + ls.method + ") of a " + image_words(ls.image);
    f.subtitle = with_commas(n) + " pages touched" +
                 (ls.knows_writes ? ", " + with_commas(w) + " of them written" : " (the method does not tell reads from writes)");
    svg::MapPanel m;
    m.title = "touched pages";
    const char* touched = ls.knows_writes ? "read" : "touched";
    m.legend = {{"written", kWritten, share(w, pages, ls.image.page_size)},
                {touched, kRead, share(n - w, pages, ls.image.page_size)},
                {"untouched", kGrey, share(pages - n, pages, ls.image.page_size)}};
    if (!ls.knows_writes) m.legend.erase(m.legend.begin());
    const size_t k = m.legend.size(), i_written = 0, i_read = ls.knows_writes ? 1 : 0, i_untouched = k - 1;
    m.grid = svg::make_grid(pages, width, rows, k);
    // Untouched = the whole image less the touched pages: add everything as untouched, then
    // move each touched page (cell counts only; the work is the touches, not the image).
    for (uint64_t c = 0; c * m.grid.pages_per_cell < pages; ++c)
        m.grid.counts[c * k + i_untouched] = std::min(m.grid.pages_per_cell, pages - c * m.grid.pages_per_cell);
    svg::OrderSeries s;
    s.touches.reserve(n);
    for (auto& t : ls.touches) {
        const bool wr = ls.knows_writes && (t.access & kAccessWrite);
        const uint64_t cell = t.page / m.grid.pages_per_cell;
        --m.grid.counts[cell * k + i_untouched];
        ++m.grid.counts[cell * k + (wr ? i_written : i_read)];
        s.touches.push_back({t.page, static_cast<uint8_t>(wr ? 1 : 0)});
    }
    f.maps.push_back(std::move(m));
    f.has_order = true;
    f.order.title = "loading order";
    f.order.series.push_back(std::move(s));
    f.order.legend = {{touched, kRead, ""}};
    if (ls.knows_writes) f.order.legend.push_back({"written", kWritten, ""});
    f.order.x_label = std::string("first touches, in order") + (ls.has_time ? "" : " (rank: scan rounds)");
    f.notes.push_back("loading order: x = position among the first touches, y = the page's offset on the map's scale");
    return svg::render(f);
}

std::string svg_compare_loadsets(const LoadingSet& a, const LoadingSet& b, const std::string& name_a, const std::string& name_b,
                                 unsigned width, unsigned rows) {
    auto c = compare_loadsets(a, b);  // checks they name one image
    svg::Figure f;
    f.page_size = a.image.page_size;
    const uint64_t pages = a.image.pages();
    f.title = "A " + name_a + " vs B " + name_b;
    const uint64_t smaller = std::min(a.touches.size(), b.touches.size());
    f.subtitle = "loading sets of one " + image_words(a.image) + "; jaccard " +
                 ratio_words(c["jaccard"], c["only_a_pages"] == 0 && c["only_b_pages"] == 0) + ", overlap " +
                 ratio_words(c["overlap"], c["intersection_pages"] == smaller);
    // Map: per page both / only A / only B / neither.
    svg::MapPanel m;
    m.title = "touched pages, A against B";
    const uint64_t both = c["intersection_pages"], only_a = c["only_a_pages"], only_b = c["only_b_pages"], uni = c["union_pages"];
    m.legend = {{"both", kBoth, share(both, pages, f.page_size)},
                {"only A", kOnlyA, share(only_a, pages, f.page_size)},
                {"only B", kOnlyB, share(only_b, pages, f.page_size)},
                {"neither", kGrey, share(pages - uni, pages, f.page_size)}};
    m.grid = svg::make_grid(pages, width, rows, 4);
    for (uint64_t cell = 0; cell * m.grid.pages_per_cell < pages; ++cell)
        m.grid.counts[cell * 4 + 3] = std::min(m.grid.pages_per_cell, pages - cell * m.grid.pages_per_cell);
    std::vector<uint64_t> pa, pb;
    for (auto& t : a.touches) pa.push_back(t.page);
    for (auto& t : b.touches) pb.push_back(t.page);
    std::sort(pa.begin(), pa.end());
    std::sort(pb.begin(), pb.end());
    auto in = [](const std::vector<uint64_t>& v, uint64_t p) { return std::binary_search(v.begin(), v.end(), p); };
    auto mark = [&](uint64_t page, size_t k) {
        const uint64_t cell = page / m.grid.pages_per_cell;
        --m.grid.counts[cell * 4 + 3];
        ++m.grid.counts[cell * 4 + k];
    };
    for (uint64_t p : pa) mark(p, in(pb, p) ? 0 : 1);
    for (uint64_t p : pb)
        if (!in(pa, p)) mark(p, 2);
    f.maps.push_back(std::move(m));
    // Order: each set's first touches along the same x (0-100% of its own order).
    f.has_order = true;
    f.order.title = "loading orders";
    f.order.legend = {{"only A", kOnlyA, "A's touch"}, {"only B", kOnlyB, "B's touch"}, {"both", kBoth, "a page both touch"}};
    svg::OrderSeries sa, sb;
    for (auto& t : a.touches) sa.touches.push_back({t.page, static_cast<uint8_t>(in(pb, t.page) ? 2 : 0)});
    for (auto& t : b.touches) sb.touches.push_back({t.page, static_cast<uint8_t>(in(pa, t.page) ? 2 : 1)});
    f.order.series.push_back(std::move(sa));
    f.order.series.push_back(std::move(sb));
    f.order.x_label = "position in each one's first touches";
    f.notes.push_back("A: " + with_commas(a.touches.size()) + " pages (" + a.method + "), B: " + with_commas(b.touches.size()) +
                      " pages (" + b.method + ")");
    return svg::render(f);
}

std::string svg_compare_splits(const SplitPlan& a, const SplitPlan& b, const std::string& name_a, const std::string& name_b,
                               unsigned width, unsigned rows) {
    auto c = compare_splits(a, b);  // checks the geometry
    svg::Figure f;
    f.page_size = a.image.page_size;
    f.title = "A " + name_a + " vs B " + name_b;
    f.subtitle = "splits of a " + image_words(a.image) + "; " + with_commas(c["same_class_pages"].get<uint64_t>()) + " of the " +
                 pages_words(c["image_pages"].get<uint64_t>()) + " in the same class (agreement " +
                 ratio_words(c["agreement"], c["same_class_pages"] == c["image_pages"]) + ")" +
                 (c["same_image"].get<bool>() ? "" : "; different image fingerprints");
    f.maps.push_back(split_panel(a, width, rows, "A: " + short_name(name_a, 500)));
    f.maps.push_back(split_panel(b, width, rows, "B: " + short_name(name_b, 500)));
    // The largest moves between classes, for the caption.
    std::vector<std::pair<uint64_t, std::string>> moves;
    for (int i = 0; i < kPageClasses; ++i)
        for (int j = 0; j < kPageClasses; ++j) {
            const char *ci = class_name(static_cast<PageClass>(i)), *cj = class_name(static_cast<PageClass>(j));
            const uint64_t n = c["matrix"][ci][cj];
            if (i != j && n) moves.push_back({n, std::string(ci) + " in A, " + cj + " in B: " + pages_words(n)});
        }
    std::sort(moves.begin(), moves.end(), [](auto& x, auto& y) { return x.first > y.first; });
    if (moves.empty()) f.notes.push_back("every page has the same class in both");
    for (size_t i = 0; i < moves.size() && i < 4; ++i) f.notes.push_back(moves[i].second);
    return svg::render(f);
}

namespace {

std::string text_loadset(const std::string& name, const LoadingSet& ls, uint64_t digest) {
    std::ostringstream o;
    auto d = describe_loadset(ls);
    const uint64_t n = ls.touches.size();
    o << name << ": loading set (" << ls.method << ") of a " << human_bytes(ls.image.size_bytes) << " image ("
      << ls.image.pages() << " pages of " << human_bytes(ls.image.page_size) << "), fingerprint "
      << hash::to_hex(ls.image.fingerprint) << "\n";
    o << "  touched  " << n << " pages " << pct(n, ls.image.pages()) << " of the image, " << d["touched_runs"].get<uint64_t>()
      << " runs, " << d["ranks"].get<uint64_t>() << " ranks\n";
    if (ls.knows_writes) {
        o << "  read     " << ls.read_pages() << "\n";
        o << "  written  " << ls.written_pages() << "\n";
    } else {
        o << "  (no read/write information: method " << ls.method << ")\n";
    }
    if (ls.has_time) o << "  last first-touch at " << d["last_touch_ns"].get<uint64_t>() / 1000 << " us\n";
    if (ls.meta.contains("limitations") && ls.meta["limitations"].is_array())
        for (auto& l : ls.meta["limitations"])
            if (l.is_string()) o << "  cannot see: " << l.get<std::string>() << "\n";
    o << "  digest " << hash::to_hex(digest) << "\n";
    return o.str();
}

std::string text_split(const std::string& name, const SplitReader& s) {
    std::ostringstream o;
    const auto& plan = s.plan();
    const uint64_t pages = plan.image.pages(), ps = plan.image.page_size;
    auto d = describe_split(plan);
    o << name << ": split of a " << human_bytes(plan.image.size_bytes) << " image (" << pages << " pages of "
      << human_bytes(ps) << "), fingerprint " << hash::to_hex(plan.image.fingerprint) << "\n";
    for (int c = 0; c < kPageClasses; ++c) {
        char line[128];
        std::snprintf(line, sizeof line, "  %-5s %10llu pages %s %12s %8llu runs\n", class_name(static_cast<PageClass>(c)),
                      static_cast<unsigned long long>(plan.pages_per_class[c]), pct(plan.pages_per_class[c], pages).c_str(),
                      human_bytes(plan.pages_per_class[c] * ps).c_str(),
                      static_cast<unsigned long long>(d[std::string(class_name(static_cast<PageClass>(c))) + "_runs"].get<uint64_t>()));
        o << line;
    }
    o << "  " << plan.order.size() << " pages in the load order, " << plan.extents.size() << " extents of page data\n";
    if (plan.meta.contains("touched_class_note")) o << "  " << plan.meta["touched_class_note"].get<std::string>() << "\n";
    o << "  digest " << hash::to_hex(s.digest()) << ", derived from " << hash::to_hex(s.parent_digest()) << "\n";
    return o.str();
}

std::string text_comparison(const nlohmann::json& c) {
    std::ostringstream o;
    char buf[256];
    if (c["kind"] == "loadset-comparison") {
        std::snprintf(buf, sizeof buf,
                      "A %s: %llu pages, B %s: %llu pages\n  both %llu, only A %llu, only B %llu\n  jaccard %.4f, overlap %.4f, written jaccard %.4f\n",
                      c["a_method"].get<std::string>().c_str(), (unsigned long long)c["a_pages"].get<uint64_t>(),
                      c["b_method"].get<std::string>().c_str(), (unsigned long long)c["b_pages"].get<uint64_t>(),
                      (unsigned long long)c["intersection_pages"].get<uint64_t>(), (unsigned long long)c["only_a_pages"].get<uint64_t>(),
                      (unsigned long long)c["only_b_pages"].get<uint64_t>(), c["jaccard"].get<double>(), c["overlap"].get<double>(),
                      c["written_jaccard"].get<double>());
        o << buf;
    } else {
        std::snprintf(buf, sizeof buf, "%llu of %llu pages in the same class (%.4f)\n  A\\B  ",
                      (unsigned long long)c["same_class_pages"].get<uint64_t>(), (unsigned long long)c["image_pages"].get<uint64_t>(),
                      c["agreement"].get<double>());
        o << buf;
        for (int j = 0; j < kPageClasses; ++j) {
            std::snprintf(buf, sizeof buf, "%10s", class_name(static_cast<PageClass>(j)));
            o << buf;
        }
        o << "\n";
        for (int i = 0; i < kPageClasses; ++i) {
            std::snprintf(buf, sizeof buf, "  %-5s", class_name(static_cast<PageClass>(i)));
            o << buf;
            for (int j = 0; j < kPageClasses; ++j) {
                std::snprintf(buf, sizeof buf, "%10llu",
                              (unsigned long long)c["matrix"][class_name(static_cast<PageClass>(i))][class_name(static_cast<PageClass>(j))]
                                  .get<uint64_t>());
                o << buf;
            }
            o << "\n";
        }
    }
    return o.str();
}

// Check every page of the image against the split: class and bytes.
nlohmann::json verify_against_image(const SplitReader& s, const std::string& mem) {
    Image image(mem, s.page_size());
    if (image.size_bytes() != s.image().size_bytes) throw BadInput(mem, "size differs from the split's image");
    const uint32_t ps = s.page_size();
    uint64_t bad_pages = 0, first_bad = UINT64_MAX;
    cli::Progress progress("comparing with " + mem, image.pages());
    // ZERO pages must be zero in the image...
    for (auto& r : s.plan().runs) {
        if (r.cls != PageClass::zero) continue;
        for (uint64_t p = r.start_page; p < r.start_page + r.pages; ++p)
            if (!image.is_zero(p)) {
                ++bad_pages;
                first_bad = std::min(first_bad, p);
            }
        progress.update(r.start_page);
    }
    // ...and every extent must hold the image's bytes.
    for (auto& e : s.plan().extents) {
        auto data = s.extent_data(e);
        for (uint64_t i = 0; i < e.pages; ++i)
            if (std::memcmp(data.data() + i * ps, image.page(e.image_page + i), ps) != 0) {
                ++bad_pages;
                first_bad = std::min(first_bad, e.image_page + i);
            }
        progress.update(e.image_page);
    }
    progress.finish();
    if (bad_pages)
        throw BadInput(s.name(), std::to_string(bad_pages) + " pages differ from " + mem + " (first: page " + std::to_string(first_bad) + ")");
    return {{"image", mem}, {"compared_pages", image.pages()}, {"identical", true}};
}

// An artifact opened and read once: a pipe or a FIFO cannot be opened a second time, so the
// kind's reader works over the bytes already read.
struct Opened {
    std::string path, name;
    format::Kind kind = format::Kind::loadset;
    LoadingSet ls;
    uint64_t ls_digest = 0;
    std::unique_ptr<SplitReader> split;
    std::unique_ptr<placed::PlacedReader> placed;
    const SplitPlan& plan() const { return split ? split->plan() : placed->plan(); }
};

Opened open_artifact(const std::string& path) {
    Opened o;
    o.path = path;
    o.name = path == "-" ? "<stdin>" : path;
    file::InputFile input(path, file::InputFile::Expect::artifact);
    o.kind = format::Artifact::peek_kind(input);
    switch (o.kind) {
        case format::Kind::loadset: o.ls = read_loadset(std::move(input), &o.ls_digest); break;  // always fully verified
        case format::Kind::split: o.split = std::make_unique<SplitReader>(std::move(input)); break;
        case format::Kind::placed: o.placed = std::make_unique<placed::PlacedReader>(std::move(input)); break;
        default:
            throw BadInput(o.name, "is a " + std::string(format::kind_name(o.kind)) + " artifact, which this snap-stat cannot describe yet");
    }
    return o;
}

// Where the reports go: each file's block to stdout as soon as it is ready, or gathered for
// -o REPORT and written once (atomically) when every file was described. Text blocks are
// separated by an empty line; JSON is one object a line (JSON Lines).
class Sink {
public:
    explicit Sink(const Options& opt)
        : path_(opt.common.output), to_file_(!path_.empty() && path_ != "-"), drop_(opt.svg == "-" && !to_file_),
          json_(opt.common.json) {}
    void text(const std::string& t) {
        std::string s = (blocks_++ && !json_ ? "\n" : "") + t;
        if (drop_) return;
        if (to_file_) buf_ += s;
        else cli::print_text(s);
    }
    void json(const nlohmann::json& j) { text(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"); }
    void commit() {
        if (to_file_) cli::print_report(path_, buf_);
    }

private:
    std::string path_;
    bool to_file_, drop_, json_;
    unsigned blocks_ = 0;
    std::string buf_;
};

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (auto& l : lines) out += l + "\n";
    return out;
}

unsigned map_width(const Options& opt) { return opt.width ? opt.width : kMapWidth; }
unsigned map_rows(const Options& opt) { return opt.rows ? opt.rows : kMapRows; }

void write_svg(const Options& opt, const std::string& svg_text) { file::write_report(opt.svg, svg_text); }

// One artifact's report (and picture): what `snap-stat FILE` prints.
void describe(const Options& opt, Opened& in, Sink& out, bool heading) {
    const std::string& name = in.name;
    const bool json = opt.common.json;
    const std::string head = heading && !json ? name + ":\n" : "";
    auto with_file = [&](nlohmann::json j) {
        j["file"] = in.path;
        return j;
    };
    if (in.kind == format::Kind::loadset) {
        const LoadingSet& ls = in.ls;
        if (!opt.mem.empty()) throw UsageError("--mem goes with a split");
        if (!opt.pool_url.empty()) throw UsageError("--pool-url goes with a placed artifact");
        if (opt.list) {
            if (json) {
                out.json(with_file(list_loadset_json(ls)));
            } else {
                std::string text = head;
                char buf[96];
                for (auto& t : ls.touches) {
                    std::snprintf(buf, sizeof buf, "%llu %s %u %llu\n", (unsigned long long)t.page, access_name(t.access), t.rank,
                                  (unsigned long long)t.time_ns);
                    text += buf;
                }
                out.text(text);
            }
        } else if (opt.map) {
            if (json) out.json(with_file(map_loadset_json(ls, map_width(opt), map_rows(opt))));
            else out.text(head + join_lines(map_loadset(ls, map_width(opt), map_rows(opt))));
        } else {
            auto j = describe_loadset(ls);
            j["file"] = in.path;
            j["digest"] = hash::to_hex(in.ls_digest);
            if (opt.verify) j["verified"] = true;
            if (json) out.json(j);
            else out.text(text_loadset(name, ls, in.ls_digest) + (opt.verify ? "  checksums ok\n" : ""));
        }
        if (!opt.svg.empty()) write_svg(opt, svg_loadset(ls, name, opt.width, opt.rows));
        return;
    }
    const std::string kind(format::kind_name(in.kind));
    const SplitPlan& plan = in.plan();
    nlohmann::json verified;
    std::string pool_text;
    bool pool_missing = false;
    nlohmann::json pool;
    if (in.split) {
        if (!opt.pool_url.empty()) throw UsageError("--pool-url goes with a placed artifact");
        if (opt.verify) {
            cli::Progress p("verifying page data", 0);
            in.split->verify_data();
        }
        if (!opt.mem.empty()) verified = verify_against_image(*in.split, opt.mem);
    } else {
        if (!opt.mem.empty()) throw UsageError("--mem goes with a split");
        const placed::PoolUrls urls = placed::resolve_pool_url(*in.placed, opt.pool_url, "--pool-url");
        pool::ReadOptions pool_options;
        pool_options.url = opt.pool_url.empty() ? std::string() : urls.used;
        if (opt.verify) {
            in.placed->artifact().verify_all();
            for (auto& part : in.placed->parts()) placed::check_part(part, {}, pool_options);
        }
        if (opt.pool && !opt.list && !opt.map) {
            pool = placed::pool_view(*in.placed, pool_options.url);
            if (pool.is_null()) throw UsageError(name + ": no part of it is in a pool");
            pool_text = "  pool " + pool["pool_url"].get<std::string>() + ": " + std::to_string(pool["registered_manifests"].get<uint64_t>()) +
                        " manifests registered" + (pool["registered"].get<bool>() ? " (this one among them)" : " (not this one)") + "\n";
            for (auto& p : pool["parts"]) {
                pool_text += "  " + p["class"].get<std::string>() + ": " + std::to_string(p["present_chunks"].get<uint64_t>()) + " of " +
                             std::to_string(p["distinct_chunks"].get<uint64_t>()) + " chunks present, " +
                             std::to_string(p["shared_chunks"].get<uint64_t>()) + " shared with other manifests (" +
                             tier::format_size(p["shared_bytes"]) + "), " + tier::format_size(p["unique_bytes"]) +
                             " named by this one alone\n";
                pool_missing = pool_missing || p["missing_chunks"].get<uint64_t>() > 0;
            }
        }
    }
    if (opt.list) {
        if (json) {
            out.json(with_file(list_split_json(plan, kind)));
        } else {
            std::string text = head;
            char buf[96];
            for (auto& r : plan.runs) {
                std::snprintf(buf, sizeof buf, "%llu %llu %s\n", (unsigned long long)r.start_page, (unsigned long long)r.pages,
                              class_name(r.cls));
                text += buf;
            }
            out.text(text);
        }
    } else if (opt.map) {
        if (json) out.json(with_file(map_split_json(plan, map_width(opt), map_rows(opt), kind)));
        else out.text(head + join_lines(map_split(plan, map_width(opt), map_rows(opt))));
    } else if (in.split) {
        auto j = describe_split(plan);
        j["file"] = in.path;
        j["digest"] = hash::to_hex(in.split->digest());
        j["parent_digest"] = hash::to_hex(in.split->parent_digest());
        if (opt.verify) j["verified"] = true;
        if (!verified.is_null()) j["image_check"] = verified;
        if (json) out.json(j);
        else out.text(text_split(name, *in.split) + (opt.verify ? "  checksums ok\n" : "") +
                      (verified.is_null() ? "" : "  every page matches " + opt.mem + "\n"));
    } else {  // described by common/placed.cpp
        auto& r = *in.placed;
        auto j = placed::describe_placed(r);
        j["file"] = in.path;
        j["digest"] = hash::to_hex(r.digest());
        j["parent_digest"] = hash::to_hex(r.parent_digest());
        if (opt.verify) j["verified"] = true;
        if (!pool.is_null()) j["pool"] = pool;
        if (json) out.json(j);
        else out.text(placed::text_placed(r) + pool_text +
                      (opt.verify && !pool_missing ? "  checksums ok, every part file matches its digest\n" : ""));
    }
    if (!opt.svg.empty()) write_svg(opt, svg_split(plan, name, kind == "split" ? "split" : "placed artifact", opt.width, opt.rows));
    if (pool_missing) throw BadInput(name, "chunks are missing from its pool " + pool["pool_url"].get<std::string>());
}

void compare(const Options& opt, Sink& out) {
    if (opt.artifacts.size() != 2) throw UsageError("--compare takes two artifacts of a kind (two loading sets or two splits)");
    if (opt.list || opt.map || !opt.mem.empty()) throw UsageError("--list, --map and --mem describe one artifact, not a comparison");
    Opened a = open_artifact(opt.artifacts[0]);
    Opened b = open_artifact(opt.artifacts[1]);
    nlohmann::json c;
    std::string picture;
    if (a.kind == format::Kind::loadset && b.kind == format::Kind::loadset) {
        c = compare_loadsets(a.ls, b.ls);
        if (!opt.svg.empty()) picture = svg_compare_loadsets(a.ls, b.ls, a.name, b.name, opt.width, opt.rows);
    } else if (a.kind == format::Kind::split && b.kind == format::Kind::split) {
        if (opt.verify) {
            a.split->verify_data();
            b.split->verify_data();
        }
        c = compare_splits(a.plan(), b.plan());
        if (!opt.svg.empty()) picture = svg_compare_splits(a.plan(), b.plan(), a.name, b.name, opt.width, opt.rows);
    } else {
        throw UsageError("can compare two loading sets or two splits, not a " + std::string(format::kind_name(a.kind)) +
                         " with a " + std::string(format::kind_name(b.kind)));
    }
    c["a"] = opt.artifacts[0];
    c["b"] = opt.artifacts[1];
    if (opt.common.json) out.json(c);
    else out.text(text_comparison(c));
    if (!picture.empty()) write_svg(opt, picture);
}

// The error of one file in a multi-file run, said as run_tool would say it, naming the file.
int report_failure(const std::string& path, const std::string& what, const std::string& hint, int code) {
    const std::string name = path == "-" ? "<stdin>" : path;
    const std::string msg = what.rfind(name + ":", 0) == 0 ? what : name + ": " + what;
    cli::emit_error(msg, hint, code, {{"file", path}});
    return code;
}

}  // namespace

int run(const Options& opt) {
    if (opt.artifacts.empty()) throw UsageError("give an artifact (- for stdin)");
    if (std::count(opt.artifacts.begin(), opt.artifacts.end(), "-") > 1) throw UsageError("stdin (-) can be read only once");
    if (!opt.pool_url.empty() && !opt.verify && !opt.pool)
        throw UsageError("--pool-url goes with --verify or --pool", "it names the pool those read a placed artifact's pool parts from");
    if (!opt.svg.empty()) {
        if (opt.artifacts.size() > 1 && !opt.compare)
            throw UsageError("--svg draws one artifact, or two with --compare", "give one file, or --svg for each file in turn");
        if (opt.width > kSvgMaxCells || opt.rows > kSvgMaxCells)
            throw UsageError("--svg draws at most " + std::to_string(kSvgMaxCells) + " cells a row and " +
                             std::to_string(kSvgMaxCells) + " rows");
        if (opt.svg == opt.common.output)
            throw UsageError(opt.svg == "-" ? "--svg - and -o - both want stdout" : "--svg and -o name the same file");
        if (opt.svg == "-") cli::globals().json = false;  // the SVG owns stdout: no JSON error objects there
    }
    Sink out(opt);
    if (opt.compare) {
        compare(opt, out);
        out.commit();
        return 0;
    }
    if (opt.artifacts.size() == 1) {  // errors go to run_tool as they always did
        Opened in = open_artifact(opt.artifacts[0]);
        describe(opt, in, out, false);
        out.commit();
        return 0;
    }
    // Several files: each described in turn; one that fails is said on stderr and the others
    // go on; the exit status is the highest code of those that failed.
    int worst = 0;
    for (auto& path : opt.artifacts) {
        try {
            Opened in = open_artifact(path);
            describe(opt, in, out, true);
        } catch (const Error& e) {
            worst = std::max(worst, report_failure(path, e.what(), e.hint(), static_cast<int>(e.code())));
        } catch (const std::bad_alloc&) {
            worst = std::max(worst, report_failure(path, "out of memory", {}, 1));
        }
    }
    if (worst == 0) out.commit();  // -o REPORT: only a complete report replaces the file
    return worst;
}

}  // namespace snap::stat_tool

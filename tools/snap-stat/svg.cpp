// SPDX-License-Identifier: Apache-2.0
#include "svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace snap::stat_tool::svg {

namespace {

uint64_t ceil_div(uint64_t a, uint64_t b) { return b ? a / b + (a % b != 0) : 0; }

uint64_t pow2_at_least(uint64_t v) {
    uint64_t p = 1;
    while (p < v && p < (uint64_t{1} << 62)) p <<= 1;
    return p;
}

// One decimal, no trailing ".0": coordinates stay short.
std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    std::string s = b;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    if (s == "-0") s = "0";
    return s;
}

// Width of a text line in pixels at 12 px DejaVu Sans, roughly (for the canvas size only).
double text_px(const std::string& s, double font_px = 12) {
    size_t chars = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++chars;
    return static_cast<double>(chars) * font_px * 0.6;
}

// Rectangles of one colour as one path of subpaths ("M x y h w v h h -w z"): a map of many
// thousand cells stays a few hundred KiB.
class Paths {
public:
    explicit Paths(size_t colours) : d_(colours) {}
    void rect(size_t colour, double x, double y, double w, double h) {
        if (w <= 0 || h <= 0) return;
        auto& d = d_[colour];
        d += "M" + num(x) + " " + num(y) + "h" + num(w) + "v" + num(h) + "h-" + num(w) + "z";
    }
    void emit(std::ostringstream& o, const std::vector<Category>& cats) const {
        for (size_t i = 0; i < d_.size() && i < cats.size(); ++i)
            if (!d_[i].empty())
                o << "<path class=\"cat\" data-category=\"" << xml_text(cats[i].name) << "\" fill=\"" << cats[i].colour
                  << "\" d=\"" << d_[i] << "\"/>\n";
    }

private:
    std::vector<std::string> d_;
};

struct Geometry {
    double cell = 6;  // pixels per cell, square
    double map_w = 0, map_h = 0;
};

void text(std::ostringstream& o, double x, double y, const std::string& s, const char* anchor = "start",
          const char* cls = nullptr) {
    o << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\"";
    if (std::string(anchor) != "start") o << " text-anchor=\"" << anchor << "\"";
    if (cls) o << " class=\"" << cls << "\"";
    o << ">" << xml_text(s) << "</text>\n";
}

void line(std::ostringstream& o, double x1, double y1, double x2, double y2) {
    o << "<line class=\"ax\" x1=\"" << num(x1) << "\" y1=\"" << num(y1) << "\" x2=\"" << num(x2) << "\" y2=\"" << num(y2)
      << "\"/>\n";
}

// The cells of one map: pure cells of one category merge with their like neighbours in a
// row; a mixed cell is a stacked bar, the first category of the legend on top.
void draw_map(std::ostringstream& o, const MapPanel& m, double x0, double y0, const Geometry& g) {
    const size_t k = m.legend.size();
    const CellGrid& grid = m.grid;
    const uint64_t cells = ceil_div(grid.image_pages, grid.pages_per_cell);
    Paths paths(k);
    for (unsigned r = 0; r < grid.rows; ++r) {
        const double y = y0 + r * g.cell;
        uint64_t c = uint64_t{r} * grid.width;
        const uint64_t row_end = std::min<uint64_t>(cells, c + grid.width);
        while (c < row_end) {
            const uint64_t* n = &grid.counts[c * k];
            size_t only = k;
            for (size_t i = 0; i < k; ++i)
                if (n[i] == grid.pages_per_cell) only = i;
            const double x = x0 + static_cast<double>(c - uint64_t{r} * grid.width) * g.cell;
            if (only < k) {  // a pure cell: extend over the like cells after it
                uint64_t e = c + 1;
                while (e < row_end && grid.counts[e * k + only] == grid.pages_per_cell) ++e;
                paths.rect(only, x, y, static_cast<double>(e - c) * g.cell, g.cell);
                c = e;
                continue;
            }
            // A mixed or partial cell; its segments' heights are its pages' shares.
            double at = y;
            const double per = static_cast<double>(grid.pages_per_cell);
            for (size_t i = 0; i < k; ++i) {
                if (!n[i]) continue;
                const double h = g.cell * static_cast<double>(n[i]) / per;
                paths.rect(i, x, at, g.cell, h);
                at += h;
            }
            ++c;
        }
    }
    paths.emit(o, m.legend);
    o << "<rect class=\"frame\" x=\"" << num(x0 - 0.5) << "\" y=\"" << num(y0 - 0.5) << "\" width=\"" << num(g.map_w + 1)
      << "\" height=\"" << num(g.map_h + 1) << "\"/>\n";
}

void draw_legend(std::ostringstream& o, const std::vector<Category>& cats, double x, double y) {
    for (size_t i = 0; i < cats.size(); ++i) {
        const double yy = y + static_cast<double>(i) * 17;
        o << "<rect x=\"" << num(x) << "\" y=\"" << num(yy - 10) << "\" width=\"12\" height=\"12\" fill=\"" << cats[i].colour
          << "\" stroke=\"#777\" stroke-width=\"0.5\"/>\n";
        o << "<text x=\"" << num(x + 18) << "\" y=\"" << num(yy) << "\"><tspan class=\"b\">" << xml_text(cats[i].name)
          << "</tspan>";
        if (!cats[i].detail.empty()) o << "  " << xml_text(cats[i].detail);
        o << "</text>\n";
    }
}

double legend_width(const std::vector<Category>& cats) {
    double w = 0;
    for (auto& c : cats) w = std::max(w, 18 + text_px(c.name + "  " + c.detail));
    return w;
}

void draw_order(std::ostringstream& o, const OrderPanel& p, const CellGrid& grid, double x0, double y0, double w,
                const Geometry& g, unsigned label_every) {
    // Bins of about 2 x 2 pixels (bigger when there are few touches or large cells, so that
    // every mark stays visible); a bin shows the latest category of the legend that falls in it.
    size_t most = 1;
    for (auto& s : p.series) most = std::max(most, s.touches.size());
    const size_t bx = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(w / 2), most));
    const double bin_w = w / static_cast<double>(bx);
    const double bin_h = std::clamp(g.cell / 4, 2.0, 4.0);
    const size_t by = std::max<size_t>(1, static_cast<size_t>(std::ceil(g.map_h / bin_h)));
    std::vector<uint8_t> mark(bx * by, 0);  // category + 1
    const double row_pages = static_cast<double>(grid.pages_per_cell) * grid.width;
    for (auto& s : p.series) {
        const size_t n = s.touches.size();
        for (size_t i = 0; i < n; ++i) {
            const size_t ix = std::min(bx - 1, static_cast<size_t>(static_cast<double>(i) * static_cast<double>(bx) / static_cast<double>(n)));
            const double y = static_cast<double>(s.touches[i].first) / row_pages * g.cell;
            const size_t iy = std::min(by - 1, static_cast<size_t>(y / bin_h));
            auto& m = mark[iy * bx + ix];
            m = std::max<uint8_t>(m, static_cast<uint8_t>(s.touches[i].second + 1));
        }
    }
    o << "<rect x=\"" << num(x0) << "\" y=\"" << num(y0) << "\" width=\"" << num(w) << "\" height=\"" << num(g.map_h)
      << "\" fill=\"#f7f7f7\"/>\n";
    // Faint lines where the map's labelled rows start, so that the eye can follow a row across.
    for (unsigned r = label_every; r < grid.rows; r += label_every)
        o << "<line x1=\"" << num(x0) << "\" y1=\"" << num(y0 + r * g.cell) << "\" x2=\"" << num(x0 + w) << "\" y2=\""
          << num(y0 + r * g.cell) << "\" stroke=\"#e2e2e2\" stroke-width=\"1\"/>\n";
    Paths paths(p.legend.size());
    for (size_t iy = 0; iy < by; ++iy)
        for (size_t ix = 0; ix < bx;) {
            uint8_t m = mark[iy * bx + ix];
            size_t e = ix + 1;
            while (e < bx && mark[iy * bx + e] == m) ++e;
            if (m) paths.rect(m - 1u, x0 + static_cast<double>(ix) * bin_w, y0 + static_cast<double>(iy) * bin_h,
                              static_cast<double>(e - ix) * bin_w, bin_h);
            ix = e;
        }
    paths.emit(o, p.legend);
    o << "<rect class=\"frame\" x=\"" << num(x0 - 0.5) << "\" y=\"" << num(y0 - 0.5) << "\" width=\"" << num(w + 1)
      << "\" height=\"" << num(g.map_h + 1) << "\"/>\n";
    // x axis: position in the order.
    const double yb = y0 + g.map_h;
    const bool one = p.series.size() == 1;
    const uint64_t n = one ? p.series[0].touches.size() : 0;
    for (int i = 0; i <= 2; ++i) {
        const double x = x0 + w * i / 2;
        line(o, x, yb, x, yb + 4);
        std::string label = one ? std::to_string(i == 0 ? (n ? 1 : 0) : i == 1 ? (n + 1) / 2 : n) : std::to_string(50 * i) + "%";
        text(o, x, yb + 16, label, i == 0 ? "start" : i == 1 ? "middle" : "end");
    }
    text(o, x0 + w / 2, yb + 32, p.x_label, "middle");
}

}  // namespace

std::string xml_text(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            switch (c) {
                case '&': out += "&amp;"; break;
                case '<': out += "&lt;"; break;
                case '>': out += "&gt;"; break;
                case '"': out += "&quot;"; break;
                default: out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
            }
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF) is kept.
        size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        bool ok = len && i + len <= n;
        for (size_t j = 1; ok && j < len; ++j) ok = (p[i + j] & 0xC0) == 0x80;
        if (ok && len == 3) ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
        if (ok && len == 4) ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
        }
    }
    return out;
}

std::string offset_label(uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes == 0) return "0";
    int u = 0;
    double v = static_cast<double>(bytes);
    while (v >= 1024 && u < 5) v /= 1024, ++u;
    char b[32];
    if (std::fabs(v - std::round(v)) < 0.005) std::snprintf(b, sizeof b, "%.0f %s", v, units[u]);
    else if (std::fabs(v * 10 - std::round(v * 10)) < 0.05) std::snprintf(b, sizeof b, "%.1f %s", v, units[u]);
    else std::snprintf(b, sizeof b, "%.2f %s", v, units[u]);
    return b;
}

CellGrid make_grid(uint64_t image_pages, unsigned width_cells, unsigned rows, size_t categories) {
    CellGrid g;
    g.image_pages = image_pages;
    unsigned w = width_cells ? width_cells : 128, r = rows ? rows : 64;
    const uint64_t cells = uint64_t{w} * r;
    if (!width_cells && image_pages <= cells) {
        // A small image: one page a cell, about twice as wide as high.
        uint64_t side = pow2_at_least(static_cast<uint64_t>(std::ceil(std::sqrt(2.0 * static_cast<double>(image_pages)))));
        w = static_cast<unsigned>(std::clamp<uint64_t>(side, 16, 128));
    }
    g.width = w;
    g.pages_per_cell = pow2_at_least(std::max<uint64_t>(1, ceil_div(image_pages, cells)));
    g.rows = static_cast<unsigned>(std::max<uint64_t>(1, ceil_div(image_pages, g.pages_per_cell * w)));
    g.counts.assign(ceil_div(image_pages, g.pages_per_cell) * categories, 0);
    return g;
}

void add_pages(CellGrid& g, size_t categories, uint64_t start, uint64_t pages, size_t c) {
    if (start >= g.image_pages || c >= categories) return;
    const uint64_t end = std::min(g.image_pages, start + std::min(pages, g.image_pages - start));
    const uint64_t per = g.pages_per_cell;
    for (uint64_t cell = start / per; cell * per < end; ++cell) {
        const uint64_t a = std::max(start, cell * per), b = std::min(end, (cell + 1) * per);
        g.counts[cell * categories + c] += b - a;
    }
}

std::string render(const Figure& f) {
    if (f.maps.empty()) return {};
    const CellGrid& grid = f.maps[0].grid;
    const size_t nmaps = f.maps.size();
    Geometry g;
    const double target = nmaps == 1 ? 640 : 520;
    g.cell = std::clamp(std::floor(target / grid.width), 3.0, 24.0);
    g.map_w = g.cell * grid.width;
    g.map_h = g.cell * grid.rows;

    const double left = 96, gap = 44, order_w = 220;
    const bool titled = std::any_of(f.maps.begin(), f.maps.end(), [](auto& m) { return !m.title.empty(); }) || f.has_order;
    const double y0 = f.subtitle.empty() ? 46 : 64;
    const double map_y = y0 + (titled ? 20 : 0);
    const double row_bytes = static_cast<double>(grid.pages_per_cell) * grid.width * f.page_size;

    std::ostringstream body;
    unsigned every = 1;  // label every few rows (a power of two of them)
    while (every * g.cell < 16) every *= 2;
    // Left axis: the image offset where a row starts.
    {
        for (unsigned r = 0; r <= grid.rows; r += every) {
            const double y = map_y + r * g.cell;
            line(body, left - 5, y, left, y);
            const uint64_t off = static_cast<uint64_t>(r) * grid.pages_per_cell * grid.width * f.page_size;
            text(body, left - 8, y + 4, offset_label(off), "end");
        }
        body << "<text class=\"s\" transform=\"translate(14," << num(map_y + g.map_h / 2)
             << ") rotate(-90)\" text-anchor=\"middle\">image offset of the row</text>\n";
    }
    double x_end = 0;
    double legend_y = map_y + g.map_h + 54;
    size_t legend_lines = 0;
    for (size_t i = 0; i < nmaps; ++i) {
        const double x0 = left + static_cast<double>(i) * (g.map_w + gap);
        if (!f.maps[i].title.empty()) text(body, x0, map_y - 8, f.maps[i].title, "start", "b");
        draw_map(body, f.maps[i], x0, map_y, g);
        // Bottom axis: the offset within a row.
        const unsigned parts = grid.width % 4 == 0 ? 4 : grid.width % 2 == 0 ? 2 : 1;
        for (unsigned p = 0; p <= parts; ++p) {
            const double x = x0 + g.map_w * p / parts;
            line(body, x, map_y + g.map_h, x, map_y + g.map_h + 4);
            const uint64_t off = static_cast<uint64_t>(row_bytes * p / parts);
            text(body, x, map_y + g.map_h + 16, (p ? "+" : "") + offset_label(off),
                 p == 0 ? "start" : p == parts ? "end" : "middle");
        }
        draw_legend(body, f.maps[i].legend, x0, legend_y);
        legend_lines = std::max(legend_lines, f.maps[i].legend.size());
        x_end = std::max({x_end, x0 + g.map_w, x0 + legend_width(f.maps[i].legend)});
    }
    {
        char cellnote[160];
        std::snprintf(cellnote, sizeof cellnote, "offset within the row; one cell = %llu page%s (%s), its colours the shares of its pages",
                      static_cast<unsigned long long>(grid.pages_per_cell), grid.pages_per_cell == 1 ? "" : "s",
                      offset_label(grid.pages_per_cell * f.page_size).c_str());
        text(body, left, map_y + g.map_h + 32, cellnote, "start", "s");
        x_end = std::max(x_end, left + text_px(cellnote));
    }
    if (f.has_order) {
        const double x0 = left + static_cast<double>(nmaps) * (g.map_w + gap) - gap + 36;
        text(body, x0, map_y - 8, f.order.title, "start", "b");
        draw_order(body, f.order, grid, x0, map_y, order_w, g, every);
        draw_legend(body, f.order.legend, x0, legend_y);
        legend_lines = std::max(legend_lines, f.order.legend.size());
        x_end = std::max({x_end, x0 + order_w, x0 + legend_width(f.order.legend), x0 + order_w / 2 + text_px(f.order.x_label) / 2});
    }
    double y = legend_y + static_cast<double>(legend_lines) * 17 + 6;
    for (auto& n : f.notes) {
        text(body, left, y, n, "start", "s");
        x_end = std::max(x_end, left + text_px(n));
        y += 16;
    }
    const double width = std::ceil(std::max({x_end + 24, 16 + text_px(f.title, 15) + 24, 16 + text_px(f.subtitle) + 24, 480.0}));
    const double height = std::ceil(y + 8);

    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << num(width) << "\" height=\"" << num(height)
      << "\" viewBox=\"0 0 " << num(width) << " " << num(height) << "\">\n"
      << "<title>" << xml_text(f.title) << "</title>\n"
      << "<style>text{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;font-size:12px;fill:#222}"
         ".t{font-size:15px;font-weight:bold}.b{font-weight:bold}.s{fill:#555}"
         ".ax{stroke:#888;stroke-width:1}.frame{fill:none;stroke:#999;stroke-width:1}</style>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
    text(o, 16, 24, f.title, "start", "t");
    if (!f.subtitle.empty()) text(o, 16, 44, f.subtitle, "start", "s");
    o << body.str() << "</svg>\n";
    return o.str();
}

}  // namespace snap::stat_tool::svg

// SPDX-License-Identifier: Apache-2.0
#include "stat.hpp"

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

std::vector<std::string> map_split(const SplitPlan& plan, unsigned width, unsigned rows) {
    const uint64_t pages = plan.image.pages(), per = cell_pages(pages, width, rows);
    std::vector<int> level((pages + per - 1) / per, 0);
    // zero < cold < ro < rw: the hottest class present in a cell is shown.
    static const int rank_of[] = {0, 2, 3, 1};
    for (auto& r : plan.runs)
        for (uint64_t c = r.start_page / per; c <= (r.start_page + r.pages - 1) / per; ++c)
            level[c] = std::max(level[c], rank_of[static_cast<int>(r.cls)]);
    return render_cells(level, ".-rW", width);
}

std::vector<std::string> map_loadset(const LoadingSet& ls, unsigned width, unsigned rows) {
    const uint64_t pages = ls.image.pages(), per = cell_pages(pages, width, rows);
    std::vector<int> level((pages + per - 1) / per, 0);
    for (auto& t : ls.touches) level[t.page / per] = std::max(level[t.page / per], (t.access & kAccessWrite) ? 2 : 1);
    return render_cells(level, ".rW", width);
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

void print_lines(const std::string& report_path, const std::vector<std::string>& lines) {
    std::string out;
    for (auto& l : lines) out += l + "\n";
    cli::print_report(report_path, out);
}

}  // namespace

int run(const Options& opt) {
    if (opt.artifacts.empty() || opt.artifacts.size() > 2) throw UsageError("give one artifact, or two to compare");
    if (opt.artifacts.size() == 2) {
        if (opt.list || opt.map || !opt.mem.empty()) throw UsageError("--list, --map and --mem take one artifact");
        // Each input is read once: one of them may be a pipe.
        file::InputFile fa(opt.artifacts[0], file::InputFile::Expect::artifact), fb(opt.artifacts[1], file::InputFile::Expect::artifact);
        auto ka = format::Artifact::peek_kind(fa);
        auto kb = format::Artifact::peek_kind(fb);
        nlohmann::json c;
        if (ka == format::Kind::loadset && kb == format::Kind::loadset) {
            c = compare_loadsets(read_loadset(std::move(fa)), read_loadset(std::move(fb)));
        } else if (ka == format::Kind::split && kb == format::Kind::split) {
            SplitReader a(opt.artifacts[0]), b(opt.artifacts[1]);
            if (opt.verify) {
                a.verify_data();
                b.verify_data();
            }
            c = compare_splits(a.plan(), b.plan());
        } else {
            throw UsageError("can compare two loading sets or two splits, not a " + std::string(format::kind_name(ka)) +
                             " with a " + std::string(format::kind_name(kb)));
        }
        c["a"] = opt.artifacts[0];
        c["b"] = opt.artifacts[1];
        if (opt.common.json) cli::print_report(opt.common.output, c);
        else cli::print_report(opt.common.output, text_comparison(c));
        return 0;
    }

    const std::string& path = opt.artifacts[0];
    file::InputFile input(path, file::InputFile::Expect::artifact);  // read once: it may be a pipe
    auto kind = format::Artifact::peek_kind(input);
    const std::string name = path == "-" ? "<stdin>" : path;
    if (path == "-" && kind != format::Kind::loadset)
        throw UsageError("only loading sets can be read from stdin (a split is large: give its file)");
    if (kind == format::Kind::loadset) {
        if (!opt.mem.empty()) throw UsageError("--mem goes with a split");
        uint64_t digest = 0;
        LoadingSet ls = read_loadset(std::move(input), &digest);  // always fully verified
        if (opt.list) {
            std::string out;
            const char* acc[] = {"", "R", "W", "RW"};
            char buf[96];
            for (auto& t : ls.touches) {
                std::snprintf(buf, sizeof buf, "%llu %s %u %llu\n", (unsigned long long)t.page, acc[t.access & 3], t.rank,
                              (unsigned long long)t.time_ns);
                out += buf;
            }
            cli::print_report(opt.common.output, out);
            return 0;
        }
        if (opt.map) {
            print_lines(opt.common.output, map_loadset(ls, opt.width, opt.rows));
            return 0;
        }
        auto j = describe_loadset(ls);
        j["file"] = path;
        j["digest"] = hash::to_hex(digest);
        if (opt.verify) j["verified"] = true;
        if (opt.common.json) cli::print_report(opt.common.output, j);
        else cli::print_report(opt.common.output, text_loadset(name, ls, digest) + (opt.verify ? "  checksums ok\n" : ""));
        return 0;
    }
    if (kind == format::Kind::split) {
        SplitReader s(path);
        nlohmann::json verified;
        if (opt.verify) {
            cli::Progress p("verifying page data", 0);
            s.verify_data();
        }
        if (!opt.mem.empty()) verified = verify_against_image(s, opt.mem);
        if (opt.list) {
            std::string out;
            char buf[96];
            for (auto& r : s.plan().runs) {
                std::snprintf(buf, sizeof buf, "%llu %llu %s\n", (unsigned long long)r.start_page,
                              (unsigned long long)r.pages, class_name(r.cls));
                out += buf;
            }
            cli::print_report(opt.common.output, out);
            return 0;
        }
        if (opt.map) {
            print_lines(opt.common.output, map_split(s.plan(), opt.width, opt.rows));
            return 0;
        }
        auto j = describe_split(s.plan());
        j["file"] = path;
        j["digest"] = hash::to_hex(s.digest());
        j["parent_digest"] = hash::to_hex(s.parent_digest());
        if (opt.verify) j["verified"] = true;
        if (!verified.is_null()) j["image_check"] = verified;
        if (opt.common.json) cli::print_report(opt.common.output, j);
        else
            cli::print_report(opt.common.output, text_split(name, s) + (opt.verify ? "  checksums ok\n" : "") +
                            (verified.is_null() ? "" : "  every page matches " + opt.mem + "\n"));
        return 0;
    }
    if (kind == format::Kind::placed) {  // described by common/placed.cpp
        if (opt.list || !opt.mem.empty()) throw UsageError("--list and --mem go with a loading set or a split");
        placed::PlacedReader r(path);
        if (opt.map) {
            print_lines(opt.common.output, map_split(r.plan(), opt.width, opt.rows));
            return 0;
        }
        if (opt.verify) {
            r.artifact().verify_all();
            for (auto& part : r.parts()) placed::check_part(part);
        }
        auto j = placed::describe_placed(r);
        j["file"] = path;
        j["digest"] = hash::to_hex(r.digest());
        j["parent_digest"] = hash::to_hex(r.parent_digest());
        if (opt.verify) j["verified"] = true;
        std::string pool_text;
        if (opt.pool) {
            auto pv = placed::pool_view(r);
            if (pv.is_null()) throw UsageError(name + ": no part of it is in a pool");
            j["pool"] = pv;
            pool_text = "  pool " + pv["pool_url"].get<std::string>() + ": " + std::to_string(pv["registered_manifests"].get<uint64_t>()) +
                        " manifests registered" + (pv["registered"].get<bool>() ? " (this one among them)" : " (not this one)") + "\n";
            for (auto& p : pv["parts"])
                pool_text += "  " + p["class"].get<std::string>() + ": " + std::to_string(p["present_chunks"].get<uint64_t>()) + " of " +
                             std::to_string(p["distinct_chunks"].get<uint64_t>()) + " chunks present, " +
                             std::to_string(p["shared_chunks"].get<uint64_t>()) + " shared with other manifests (" +
                             tier::format_size(p["shared_bytes"]) + "), " + tier::format_size(p["unique_bytes"]) +
                             " named by this one alone\n";
            bool missing = false;
            for (auto& p : pv["parts"]) missing = missing || p["missing_chunks"].get<uint64_t>() > 0;
            if (missing) {
                if (opt.common.json) cli::print_report(opt.common.output, j);
                else cli::print_report(opt.common.output, placed::text_placed(r) + pool_text);
                throw BadInput(name, "chunks are missing from its pool " + pv["pool_url"].get<std::string>());
            }
        }
        if (opt.common.json) cli::print_report(opt.common.output, j);
        else cli::print_report(opt.common.output, placed::text_placed(r) + pool_text +
                                                      (opt.verify ? "  checksums ok, every part file matches its digest\n" : ""));
        return 0;
    }
    throw BadInput(name, "is a " + std::string(format::kind_name(kind)) + " artifact, which this snap-stat cannot describe yet");
}

}  // namespace snap::stat_tool

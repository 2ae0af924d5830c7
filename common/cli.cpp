// SPDX-License-Identifier: Apache-2.0
#include "cli.hpp"

#include "file.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace snap::cli {

Globals& globals() {
    static Globals g;
    return g;
}

const char* tool_name() { return globals().tool; }

void add_common(CLI::App& app, CommonOptions& opt, const std::string& output_help) {
    // "snap-split (snapkit) 0.1.0": the tool and the package, as coreutils tools say it.
    app.set_version_flag("--version", app.get_name() + " (snapkit) " + SNAPKIT_VERSION);
    app.add_flag("-v,--verbose", opt.verbose, "Say more on stderr");
    app.add_flag("-q,--quiet", opt.quiet, "Say nothing on stderr but errors");
    app.add_flag("--json", opt.json, "Print one JSON object on stdout describing the run");
    if (!output_help.empty()) app.add_option("-o,--output", opt.output, output_help)->type_name("FILE|-");
}

void add_report(CLI::App& app, CommonOptions& opt) {
    app.add_option("--report", opt.report,
                   "Write the report here instead of stdout (JSON, as with --json; atomically: temp file, fsync, rename)")
        ->type_name("FILE");
}

void emit_error(const std::string& what, const std::string& hint, int code, const nlohmann::json& details) {
    auto& g = globals();
    std::fprintf(stderr, "%s: error: %s\n", g.tool, what.c_str());
    if (!hint.empty()) std::fprintf(stderr, "%s: hint: %s\n", g.tool, hint.c_str());
    if (g.json) {
        nlohmann::json j = {{"error", what}, {"exit_code", code}};
        if (!hint.empty()) j["hint"] = hint;
        if (details.is_object())
            for (auto& [k, v] : details.items()) j[k] = v;
        std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        ssize_t r = ::write(STDOUT_FILENO, s.data(), s.size());
        (void)r;
    }
}

int run_tool(const char* tool, CLI::App& app, int argc, char** argv, const CommonOptions& opt,
             const std::function<int()>& body) {
    globals().tool = tool;
    signal(SIGPIPE, SIG_IGN);
    file::install_cleanup_handlers();
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        std::fprintf(stderr, "%s: error: %s\n", tool, msg.c_str());
        std::fprintf(stderr, "%s: hint: see '%s --help'\n", tool, tool);
        return static_cast<int>(ExitCode::usage);
    }
    globals().verbose = opt.verbose;
    globals().quiet = opt.quiet;
    globals().json = opt.json;
    try {
        return body();
    } catch (const file::BrokenPipe&) {
        return 0;
    } catch (const DetailedError& e) {
        emit_error(e.what(), e.hint(), static_cast<int>(e.code()), e.details());
        if (int sig = e.reraise_signal()) {
            std::fflush(stderr);
            signal(sig, SIG_DFL);
            raise(sig);
        }
        return static_cast<int>(e.code());
    } catch (const Error& e) {
        emit_error(e.what(), e.hint(), static_cast<int>(e.code()));
        return static_cast<int>(e.code());
    } catch (const std::bad_alloc&) {
        emit_error("out of memory", {}, 1);
        return 1;
    } catch (const std::exception& e) {
        emit_error(e.what(), {}, 1);
        return 1;
    }
}

void warn(const std::string& msg) { std::fprintf(stderr, "%s: warning: %s\n", globals().tool, msg.c_str()); }
void info(const std::string& msg) {
    if (globals().verbose) std::fprintf(stderr, "%s: %s\n", globals().tool, msg.c_str());
}
void note(const std::string& msg) {
    if (!globals().quiet) std::fprintf(stderr, "%s: %s\n", globals().tool, msg.c_str());
}

void print_json(const nlohmann::json& j) { print_text(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"); }
void print_text(const std::string& text) { file::write_all(STDOUT_FILENO, text.data(), text.size(), "<stdout>"); }
void print_report(const std::string& path, const std::string& text) { file::write_report(path, text); }
void print_report(const std::string& path, const nlohmann::json& j) { file::write_report(path, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"); }

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      active_(isatty(STDERR_FILENO) && !globals().quiet),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

Progress::~Progress() { finish(); }

namespace {
std::string amount(double v, const std::string& unit) {
    char b[64];
    if (unit == "bytes") {
        if (v >= 1024.0 * 1024 * 1024) std::snprintf(b, sizeof b, "%.1f GiB", v / (1024.0 * 1024 * 1024));
        else std::snprintf(b, sizeof b, "%.0f MiB", v / (1024.0 * 1024));
    } else {
        std::snprintf(b, sizeof b, "%.0f %s", v, unit.c_str());
    }
    return b;
}
}  // namespace

std::string Progress::format_line(const std::string& label, uint64_t done, uint64_t total, const std::string& unit,
                                  double elapsed_s) {
    std::string line = label + " ";
    char b[64];
    if (total) {
        std::snprintf(b, sizeof b, "%3u%% ", static_cast<unsigned>(std::min<uint64_t>(done, total) * 100 / total));
        line += b;
        // (3.0 GiB/16.0 GiB), (1000/4096 pages)
        if (unit == "bytes") line += "(" + amount(static_cast<double>(done), unit) + "/";
        else line += "(" + std::to_string(done) + "/";
        line += amount(static_cast<double>(total), unit) + ")";
    } else {
        line += amount(static_cast<double>(done), unit);
    }
    if (elapsed_s > 0 && done > 0) {
        const double rate = static_cast<double>(done) / elapsed_s;
        line += ", " + amount(rate, unit) + "/s";
        if (total > done) {
            const double left = static_cast<double>(total - done) / rate;
            if (left >= 60) std::snprintf(b, sizeof b, ", %um%02us left", static_cast<unsigned>(left / 60), static_cast<unsigned>(left) % 60);
            else std::snprintf(b, sizeof b, ", %.0fs left", left < 1 ? 1.0 : left);
            line += b;
        }
    }
    return line;
}

void Progress::update(uint64_t done) {
    if (!active_) return;
    auto now = std::chrono::steady_clock::now();
    // Only after a second of work, at most 10 times a second.
    if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r%s: %s\033[K", globals().tool, format_line(label_, done, total_, unit_, elapsed).c_str());
    std::fflush(stderr);
    shown_ = true;
}

void Progress::finish() {
    if (active_ && shown_) std::fprintf(stderr, "\r\033[K");
    active_ = false;
}

}  // namespace snap::cli

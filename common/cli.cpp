// SPDX-License-Identifier: Apache-2.0
#include "cli.hpp"

#include "file.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace snap::cli {

Globals& globals() {
    static Globals g;
    return g;
}

const char* tool_name() { return globals().tool; }

void add_common(CLI::App& app, CommonOptions& opt, const std::string& output_help) {
    app.set_version_flag("--version", std::string("snapkit ") + SNAPKIT_VERSION);
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

static void emit_error(const std::string& what, const std::string& hint, int code,
                       const nlohmann::json& details = nlohmann::json::object()) {
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

void Progress::update(uint64_t done) {
    if (!active_) return;
    auto now = std::chrono::steady_clock::now();
    // Only after a second of work, at most 10 times a second.
    if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    if (total_)
        std::fprintf(stderr, "\r%s: %s %3u%% (%llu/%llu %s)\033[K", globals().tool, label_.c_str(),
                     static_cast<unsigned>(done * 100 / total_), static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(total_), unit_.c_str());
    else
        std::fprintf(stderr, "\r%s: %s %llu %s\033[K", globals().tool, label_.c_str(),
                     static_cast<unsigned long long>(done), unit_.c_str());
    std::fflush(stderr);
    shown_ = true;
}

void Progress::finish() {
    if (active_ && shown_) std::fprintf(stderr, "\r\033[K");
    active_ = false;
}

}  // namespace snap::cli

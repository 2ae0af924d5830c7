// SPDX-License-Identifier: Apache-2.0
// Shared command-line pieces: common flags, the error/hint line format, exit codes, JSON
// error output, and a TTY-only progress line. Every tool's main() is:
//   options → CLI11 app → snap::cli::run_tool("snap-x", app, argc, argv, [&]{ return run(opt); })
#pragma once
#include "error.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace snap::cli {

struct CommonOptions {
    bool json = false;
    bool verbose = false;
    bool quiet = false;
    std::string output;  // -o/--output, "" if the tool has none or it was not given
    std::string report;  // --report (tools whose -o is an artifact), "" = stdout
};

// A runtime failure (exit 1) that carries facts for --json (merged into the error object,
// e.g. a recorded command's exit_status) and, for an interrupted run, the signal to re-raise
// once the error is reported (STYLE: SIGINT stops cleanly, drops the output, re-raises).
class DetailedError : public Error {
public:
    DetailedError(const std::string& what, nlohmann::json details, std::string hint = {}, int reraise_signal = 0)
        : Error(what, ExitCode::runtime, std::move(hint)), details_(std::move(details)), reraise_(reraise_signal) {}
    const nlohmann::json& details() const noexcept { return details_; }
    int reraise_signal() const noexcept { return reraise_; }

private:
    nlohmann::json details_;
    int reraise_;
};

// -v/-q/--json (and -o/--output when output_help is non-empty), --version.
void add_common(CLI::App& app, CommonOptions& opt, const std::string& output_help = {});

// --report FILE, for tools whose -o is the artifact: the report (JSON; snap-place: text
// unless --json) goes to FILE, written atomically, instead of stdout.
void add_report(CLI::App& app, CommonOptions& opt);

// Parse argv, run, map exceptions to exit codes and one-line diagnostics:
//   "tool: error: what" and optionally "tool: hint: …". With --json, errors are also printed
//   on stdout as {"error": "...", "exit_code": N}.
int run_tool(const char* tool, CLI::App& app, int argc, char** argv, const CommonOptions& opt,
             const std::function<int()>& body);

// The error lines run_tool prints for a failure ("tool: error: what", "tool: hint: …"), and
// with --json the error object on stdout, details merged in: for a tool that goes on after
// one input failed (snap-stat A B C).
void emit_error(const std::string& what, const std::string& hint, int code,
                const nlohmann::json& details = nlohmann::json::object());

// Diagnostics on stderr (never stdout).
void warn(const std::string& msg);
void info(const std::string& msg);  // only with -v
void note(const std::string& msg);  // unless -q
const char* tool_name();

// Print a JSON document (the tool's report) on stdout, one line, newline-terminated.
void print_json(const nlohmann::json& j);
// Print text on stdout (quiet on EPIPE).
void print_text(const std::string& text);
// The tool's report (text or JSON) to -o REPORT or stdout: file::write_report (atomic).
void print_report(const std::string& path, const std::string& text);
void print_report(const std::string& path, const nlohmann::json& j);

// A progress line on stderr when stderr is a TTY and -q is off; nothing otherwise. After a
// second of work, at most 10 times a second: done/total, the rate and (with a total) the time
// left. The unit "bytes" is shown in MiB/GiB.
class Progress {
public:
    Progress(std::string label, uint64_t total, std::string unit = "pages");
    // The line update() would print (no escapes) — for tests.
    static std::string format_line(const std::string& label, uint64_t done, uint64_t total, const std::string& unit,
                                   double elapsed_s);
    ~Progress();
    void update(uint64_t done);
    void finish();

private:
    std::string label_, unit_;
    uint64_t total_;
    bool active_;
    bool shown_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

// Globals set by run_tool: the running tool's verbosity.
struct Globals {
    const char* tool = "snapkit";
    bool verbose = false;
    bool quiet = false;
    bool json = false;
};
Globals& globals();

}  // namespace snap::cli

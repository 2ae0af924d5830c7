// SPDX-License-Identifier: Apache-2.0
// Typed errors shared by every tool. The type decides the exit code (DESIGN.md §6):
// 1 runtime failure, 2 usage, 3 bad input artifact, 4 missing capability.
#pragma once
#include <stdexcept>
#include <string>

namespace snap {

enum class ExitCode : int { ok = 0, runtime = 1, usage = 2, bad_input = 3, capability = 4 };

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, ExitCode code = ExitCode::runtime, std::string hint = {})
        : std::runtime_error(what), code_(code), hint_(std::move(hint)) {}
    ExitCode code() const noexcept { return code_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    ExitCode code_;
    std::string hint_;
};

// A file that is not a valid artifact (or image): bad magic, version, bounds, checksum.
class BadInput : public Error {
public:
    BadInput(const std::string& file, const std::string& why)
        : Error(file + ": " + why, ExitCode::bad_input), file_(file), why_(why) {}
    const std::string& file() const noexcept { return file_; }
    const std::string& why() const noexcept { return why_; }

private:
    std::string file_, why_;
};

class UsageError : public Error {
public:
    explicit UsageError(const std::string& what, std::string hint = {})
        : Error(what, ExitCode::usage, std::move(hint)) {}
};

class CapabilityError : public Error {
public:
    CapabilityError(const std::string& what, std::string hint)
        : Error(what, ExitCode::capability, std::move(hint)) {}
};

// Runtime failure from a system call: "what: strerror(errno)".
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace snap

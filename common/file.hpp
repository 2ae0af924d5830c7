// Files: read-only mappings of inputs ("-" = stdin), and atomic outputs that appear under
// their final name only once complete ("-" = stdout). A temporary output is removed if the
// process fails or is interrupted (SIGINT/SIGTERM/SIGHUP), so a Makefile never sees half a file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace snap::file {

// A whole input file, memory-mapped read-only (or read into memory from a pipe).
class InputFile {
public:
    InputFile() = default;
    explicit InputFile(const std::string& path);  // throws Error (exit 1) if unreadable
    ~InputFile();
    InputFile(InputFile&& o) noexcept;
    InputFile& operator=(InputFile&& o) noexcept;
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    const std::string& path() const { return path_; }
    // Name for messages: "<stdin>" for "-".
    std::string display_name() const { return path_ == "-" ? "<stdin>" : path_; }
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    bool is_mapped() const { return mapped_; }
    void advise_sequential() const;

private:
    void read_stream(int fd, const std::string& name);  // read to the end into memory
    std::string path_;
    std::byte* data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
};

// An output written under a temporary name in the target's directory and renamed on commit().
// For "-" the finished file is copied to stdout and removed. Refuses binary to a terminal.
class AtomicOutput {
public:
    AtomicOutput(const std::string& path, bool binary = true);
    ~AtomicOutput();  // removes the temporary file unless committed
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    void write(const void* data, size_t bytes);             // at the current end
    void pwrite(const void* data, size_t bytes, uint64_t offset);
    void pad_to(uint64_t offset);                            // zero-fill up to offset
    uint64_t offset() const { return offset_; }
    void commit();

private:
    std::string path_, tmp_;
    int fd_ = -1;
    uint64_t offset_ = 0;
    bool committed_ = false;
    int slot_ = -1;
};

// Install SIGINT/SIGTERM/SIGHUP handlers that remove pending temporary outputs and re-raise.
void install_cleanup_handlers();

// Write all bytes to fd (handles short writes, EINTR). Throws on error; EPIPE is reported
// as snap::BrokenPipe so that tools can exit quietly (`snap-stat … | head`).
void write_all(int fd, const void* data, size_t bytes, const std::string& name);

struct BrokenPipe {};

}  // namespace snap::file

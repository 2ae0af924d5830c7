// SPDX-License-Identifier: Apache-2.0
// Files: read-only mappings of inputs ("-" = stdin), and atomic outputs that appear under
// their final name only once complete ("-" = stdout). A temporary output is removed if the
// process fails or is interrupted (SIGINT/SIGTERM/SIGHUP), so a Makefile never sees half a file.
//
// Outputs are private and durable: an artifact (it holds guest memory, or says which pages a
// guest touched) is created 0600 less what the umask takes away; the temporary name is
// mkstemp's (unpredictable, in the destination's directory); the file is fsync'ed before the
// rename and the directory after it. A symlink at the destination is replaced, never followed.
// A write, fsync or close error (a full disk: ENOSPC) is an Error (exit 1) and leaves nothing.
//
// Unchanged outputs stay untouched (for Make: a rerun that produces the same bytes must not
// make everything downstream out of date): when the destination is a regular file of ours
// holding exactly the finished bytes, and grants nobody more than the new file would, it is
// left as it is (same inode, mtime and mode) and the temporary file is dropped; commit() says
// so. Anything else (other bytes, a symlink, a FIFO, a device, stdout) is written as before.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct stat;

namespace snap::file {

// What tells that a regular file changed: identity (device, inode), size, and modification and
// change times with nanoseconds. Any write, truncation, chmod or touch moves ctime, which no
// user can set back (only a clock change or a write to the device underneath escapes it).
struct Stamp {
    uint64_t dev = 0;
    uint64_t ino = 0;
    uint64_t size = 0;
    timespec mtime{}, ctime{};
    bool operator==(const Stamp& o) const {
        return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
               mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
    }
};
// The stamp of a regular file (nullopt for anything else: devices, pipes, or a failed stat).
std::optional<Stamp> stamp_of(const struct stat& st);
std::optional<Stamp> stamp_of(const std::string& path);
std::optional<Stamp> stamp_of_fd(int fd);

// A whole input file, memory-mapped read-only (or read into memory from a pipe).
// Character devices and sockets are refused (BadInput: /dev/zero never ends); pipes, FIFOs
// and stdin are read into memory with a bound: an artifact (Expect::artifact) only as far as
// its header says it goes, at most kMaxStreamBytes; anything else at most kMaxStreamBytes.
constexpr uint64_t kMaxStreamBytes = uint64_t{1} << 30;

class InputFile {
public:
    enum class Expect { any, artifact };
    InputFile() = default;
    // Throws Error (exit 1) if unreadable, BadInput (exit 3) if refused as above.
    explicit InputFile(const std::string& path, Expect expect = Expect::any);
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
    // The file's stamp when it was opened (regular files only).
    const std::optional<Stamp>& stamp() const { return stamp_; }

private:
    void read_stream(int fd, const std::string& name);  // read into memory, with a bound
    void read_stream_bounded(int fd, const std::string& name);
    std::string path_;
    Expect expect_ = Expect::any;
    std::byte* data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
    std::optional<Stamp> stamp_;
};

// What an output holds decides its mode: artifacts 0600, reports (text/JSON a tool prints)
// 0666, both less the umask (a report is what `tool > FILE` would have made).
enum class OutputKind { artifact, report };

// An output written under a temporary name in the target's directory and renamed on commit().
// For "-" the finished file is copied to stdout and removed; so it is for a destination that
// exists and is not a regular file (a character device such as /dev/null, a FIFO): that is
// written to, never replaced; and so for a path naming an open descriptor (/dev/stdout,
// /dev/stderr, /dev/fd/N, /proc/self/fd/N). Refuses binary to a terminal.
class AtomicOutput {
public:
    AtomicOutput(const std::string& path, bool binary = true, OutputKind kind = OutputKind::artifact);
    ~AtomicOutput();  // removes the temporary file unless committed
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    void write(const void* data, size_t bytes);             // at the current end
    void pwrite(const void* data, size_t bytes, uint64_t offset);
    // For long sequential outputs: start writeback of what was written since the last call
    // (once 64 MiB have gathered) and wait for the window before it, so that dirty pages stay
    // bounded, the disk works while we write, and commit()'s fsync finds little left.
    void write_behind();
    void pad_to(uint64_t offset);                            // zero-fill up to offset
    uint64_t offset() const { return offset_; }
    // Publish the output. Returns true when the destination already held these bytes and was
    // left untouched (see the top of this file), false when it was written.
    bool commit();
    bool unchanged() const { return unchanged_; }

private:
    void copy_to(int dst_fd, const std::string& dst_name);
    std::string path_, tmp_;
    OutputKind kind_;
    bool stream_ = false;  // "-" or a non-regular destination: copy the finished temp there
    int target_fd_ = -1;   // the destination names an open descriptor (/dev/fd/N, /dev/stderr)
    int fd_ = -1;
    uint64_t offset_ = 0;
    uint64_t wb_started_ = 0, wb_waited_ = 0;  // write_behind(): writeback started / completed up to
    bool committed_ = false;
    bool unchanged_ = false;
    int slot_ = -1;
};

// Write a report (text or JSON, already formatted) to path atomically, like an artifact (temp,
// fsync, rename; a symlink there is replaced, not followed), or to stdout when path is "" or
// "-". Any write/fsync/close error is an Error (exit 1); EPIPE on stdout is BrokenPipe.
// Returns true when the file already held exactly this text and was left untouched.
bool write_report(const std::string& path, std::string_view text);

// Whether the regular file at path holds exactly the bytes of the open file fd (both read from
// offset 0; the last and first 64 KiB are compared first, where artifacts differ: the trailer's
// checksum and the header). False for anything but a regular file of the same size.
bool same_bytes(const std::string& path, int fd);

// The process's umask, read without changing it (from /proc/self/status when possible).
unsigned current_umask();

// Install SIGINT/SIGTERM/SIGHUP handlers that remove pending temporary outputs and re-raise.
void install_cleanup_handlers();

// Write all bytes to fd (handles short writes, EINTR). Throws on error; EPIPE is reported
// as snap::BrokenPipe so that tools can exit quietly (`snap-stat … | head`).
void write_all(int fd, const void* data, size_t bytes, const std::string& name);

struct BrokenPipe {};

// A new sparse file of `bytes` zero bytes, private (0600 within the umask), never replacing an
// existing file (O_EXCL): the stand-in a VMM maps when the image is not on this host.
void create_placeholder(const std::string& path, uint64_t bytes);

}  // namespace snap::file

// SPDX-License-Identifier: Apache-2.0
// Unchanged outputs stay untouched (file::AtomicOutput::commit, file::write_report): the same
// bytes over a regular file of ours leave its inode, mtime and mode as they were and no
// temporary behind; other bytes, a symlink, a FIFO or /dev/null are written as before.
#include "tempdir.hpp"
#include "common/file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using namespace snap;

namespace {

struct TempDir : test::TempDir {
    TempDir() : test::TempDir("unit-unchanged") {}
};

struct stat lstat_of(const std::string& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st;
}

bool same_time(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

size_t entries(const std::string& dir) { return test::entries_in(dir); }

// An artifact-sized output: head, middle and tail, so that a difference anywhere is seen.
std::vector<char> payload(size_t bytes, char fill) {
    std::vector<char> v(bytes);
    for (size_t i = 0; i < bytes; ++i) v[i] = static_cast<char>(i * 131 + static_cast<unsigned>(fill));
    return v;
}

bool write_out(const std::string& path, const std::vector<char>& data, file::OutputKind kind = file::OutputKind::artifact) {
    file::AtomicOutput out(path, true, kind);
    out.write(data.data(), data.size());
    return out.commit();
}

void wait_a_tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }  // mtimes must be able to differ

}  // namespace

TEST_CASE("the same bytes leave the destination as it was: inode, mtime, mode; no temporary") {
    TempDir d;
    for (size_t size : {size_t{0}, size_t{5}, size_t{100000}, size_t{3} << 20}) {
        CAPTURE(size);
        const std::string p = d.path + "/out" + std::to_string(size);
        auto data = payload(size, 'a');
        CHECK_FALSE(write_out(p, data));  // new: written
        const struct stat before = lstat_of(p);
        wait_a_tick();
        file::AtomicOutput out(p);
        out.write(data.data(), data.size());
        CHECK(out.commit());
        CHECK(out.unchanged());
        const struct stat after = lstat_of(p);
        CHECK(after.st_ino == before.st_ino);
        CHECK(same_time(after.st_mtim, before.st_mtim));
        CHECK(same_time(after.st_ctim, before.st_ctim));
        CHECK(after.st_mode == before.st_mode);
    }
    CHECK(entries(d.path) == 4);  // the four outputs, no temporary
}

TEST_CASE("other bytes of the same size, or another size, replace the destination") {
    TempDir d;
    const std::string p = d.path + "/out";
    const size_t size = size_t{1} << 20;
    auto data = payload(size, 'a');
    REQUIRE_FALSE(write_out(p, data));
    // One byte changed in the middle (the first and last 64 KiB compared first are equal), then
    // at the end, then a longer file.
    for (size_t at : {size / 2, size - 1}) {
        CAPTURE(at);
        const ino_t ino = lstat_of(p).st_ino;
        data[at] ^= 1;
        wait_a_tick();
        CHECK_FALSE(write_out(p, data));
        CHECK(lstat_of(p).st_ino != ino);
        CHECK(slurp(p) == std::string(data.begin(), data.end()));
    }
    const ino_t ino = lstat_of(p).st_ino;
    data.push_back('x');
    CHECK_FALSE(write_out(p, data));
    CHECK(lstat_of(p).st_ino != ino);
    CHECK(lstat_of(p).st_size == static_cast<off_t>(data.size()));
    CHECK(entries(d.path) == 1);
}

TEST_CASE("a destination more open than the new file would be is replaced (the mode is never kept looser)") {
    TempDir d;
    const std::string p = d.path + "/out";
    auto data = payload(4096, 'm');
    REQUIRE_FALSE(write_out(p, data));
    REQUIRE(::chmod(p.c_str(), 0644) == 0);  // an artifact is 0600 at most
    const ino_t ino = lstat_of(p).st_ino;
    CHECK_FALSE(write_out(p, data));
    CHECK(lstat_of(p).st_ino != ino);
    CHECK((lstat_of(p).st_mode & 0777) == (0600 & ~file::current_umask()));
    // Stricter than the new file: kept as it is.
    REQUIRE(::chmod(p.c_str(), 0400) == 0);
    const ino_t ino2 = lstat_of(p).st_ino;
    CHECK(write_out(p, data));
    CHECK(lstat_of(p).st_ino == ino2);
    CHECK((lstat_of(p).st_mode & 0777) == 0400);
}

TEST_CASE("write_report: the same text keeps the file, another text replaces it") {
    TempDir d;
    const std::string p = d.path + "/r.json";
    CHECK_FALSE(file::write_report(p, "{\"a\": 1}\n"));
    const struct stat before = lstat_of(p);
    wait_a_tick();
    CHECK(file::write_report(p, "{\"a\": 1}\n"));
    CHECK(lstat_of(p).st_ino == before.st_ino);
    CHECK(same_time(lstat_of(p).st_mtim, before.st_mtim));
    CHECK_FALSE(file::write_report(p, "{\"a\": 2}\n"));
    CHECK(lstat_of(p).st_ino != before.st_ino);
    CHECK(slurp(p) == "{\"a\": 2}\n");
    CHECK_FALSE(file::write_report("", ""));  // stdout is always written (nothing, here)
}

TEST_CASE("a symlink at the destination is replaced as before, even when its target holds the same bytes") {
    TempDir d;
    const std::string target = d.path + "/target", link = d.path + "/link";
    auto data = payload(8192, 's');
    REQUIRE_FALSE(write_out(target, data));
    const struct stat tbefore = lstat_of(target);
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    CHECK_FALSE(write_out(link, data));
    CHECK(S_ISREG(lstat_of(link).st_mode));
    CHECK(slurp(link) == std::string(data.begin(), data.end()));
    CHECK(lstat_of(target).st_ino == tbefore.st_ino);  // never followed
    CHECK(same_time(lstat_of(target).st_mtim, tbefore.st_mtim));
    CHECK(entries(d.path) == 2);
}

TEST_CASE("a FIFO and /dev/null are written to as before, never reported unchanged") {
    TempDir d;
    auto data = payload(1000, 'f');
    CHECK_FALSE(write_out("/dev/null", data));
    CHECK_FALSE(write_out("/dev/null", data));
    const std::string fifo = d.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string got;
    std::thread reader([&] { got = slurp(fifo); });
    CHECK_FALSE(write_out(fifo, data));
    reader.join();
    CHECK(got == std::string(data.begin(), data.end()));
    CHECK(S_ISFIFO(lstat_of(fifo).st_mode));
}

TEST_CASE("same_bytes compares regular files only") {
    TempDir d;
    const std::string a = d.path + "/a";
    auto data = payload(200000, 'c');
    REQUIRE_FALSE(write_out(a, data));
    int fd = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(file::same_bytes(a, fd));
    CHECK_FALSE(file::same_bytes(d.path + "/missing", fd));
    CHECK_FALSE(file::same_bytes("/dev/null", fd));
    CHECK_FALSE(file::same_bytes(d.path, fd));
    ::close(fd);
}

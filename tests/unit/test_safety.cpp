// SPDX-License-Identifier: Apache-2.0
// Safe by default: output modes and atomicity (file::AtomicOutput, file::write_report),
// bounded inputs (InputFile on devices and streams), readers that allocate nothing for what a
// field merely claims (resealed artifacts), JSON depth bounds.
#include "tempdir.hpp"
#include "../fuzz/reseal.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/format/container.hpp"
#include "common/loadset.hpp"
#include "common/split.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using namespace snap;

namespace {

struct TempDir : test::TempDir {
    TempDir() : test::TempDir("unit-safety") {}
};

struct Umask {
    mode_t old;
    explicit Umask(mode_t m) : old(::umask(m)) {}
    ~Umask() { ::umask(old); }
};

unsigned mode_of(const std::string& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> bytes_of(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void put(const std::string& p, const std::vector<uint8_t>& d) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

size_t files_in(const std::string& dir) { return test::entries_in(dir); }

}  // namespace

TEST_CASE("current_umask reads the mask without changing it") {
    Umask u(027);
    CHECK(file::current_umask() == 027);
    CHECK(file::current_umask() == 027);
}

TEST_CASE("artifacts are 0600 less the umask; reports 0666 less the umask") {
    TempDir d;
    for (mode_t um : {mode_t{022}, mode_t{077}, mode_t{027}, mode_t{0}}) {
        Umask u(um);
        std::string a = d.path + "/a" + std::to_string(um), r = d.path + "/r" + std::to_string(um);
        {
            file::AtomicOutput out(a);
            out.write("x", 1);
            out.commit();
        }
        file::write_report(r, "report\n");
        CHECK(mode_of(a) == (0600 & ~um));
        CHECK(mode_of(r) == (0666 & ~um));
        CHECK(slurp(r) == "report\n");
    }
}

TEST_CASE("write_report replaces a symlink at the destination, never follows it") {
    TempDir d;
    const std::string victim = d.path + "/victim", link = d.path + "/link";
    put(victim, {'k', 'e', 'e', 'p'});
    REQUIRE(::symlink(victim.c_str(), link.c_str()) == 0);
    file::write_report(link, "new\n");
    CHECK(slurp(victim) == "keep");
    struct stat st {};
    REQUIRE(::lstat(link.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(slurp(link) == "new\n");
    CHECK(files_in(d.path) == 2);  // no temporary left
}

TEST_CASE("an uncommitted output leaves nothing; a destination that is a directory is refused") {
    TempDir d;
    {
        file::AtomicOutput out(d.path + "/x");
        out.write("abc", 3);
    }
    CHECK(files_in(d.path) == 0);
    CHECK_THROWS_AS(file::AtomicOutput(d.path + "/"), UsageError);  // "dir/" has no file name
    REQUIRE(::mkdir((d.path + "/sub").c_str(), 0700) == 0);
    CHECK_THROWS_AS(file::AtomicOutput(d.path + "/sub"), Error);
}

TEST_CASE("a write error (the file size limit standing in for a full disk) throws and leaves nothing") {
    TempDir d;
    struct rlimit old {};
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit small = {4096, old.rlim_max};
    auto old_handler = signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    try {
        std::string text(65536, 'x');
        file::write_report(d.path + "/big", text);
    } catch (const Error& e) {
        threw = e.code() == ExitCode::runtime;
    }
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    CHECK(threw);
    CHECK(files_in(d.path) == 0);
}

TEST_CASE("InputFile refuses character devices and bounds streams") {
    CHECK_THROWS_AS(file::InputFile("/dev/zero"), BadInput);
    CHECK_THROWS_AS(file::InputFile("/dev/urandom", file::InputFile::Expect::artifact), BadInput);
    CHECK_THROWS_AS(file::InputFile(""), UsageError);
    // A FIFO fed endless zeros, read as an artifact: stops after the (bad) header.
    TempDir d;
    const std::string fifo = d.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::thread writer([&] {
        FILE* f = std::fopen(fifo.c_str(), "w");
        if (!f) return;
        static const char zeros[65536] = {};
        for (int i = 0; i < 64 && std::fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros; ++i) {
        }
        std::fclose(f);
    });
    size_t got = 0;
    auto old_pipe = signal(SIGPIPE, SIG_IGN);  // the writer's pipe breaks when the reader stops
    {
        file::InputFile in(fifo, file::InputFile::Expect::artifact);
        got = in.size();
    }
    writer.join();
    signal(SIGPIPE, old_pipe);
    CHECK(got <= format::kHeaderBytes);
}

TEST_CASE("a resealed loading set claiming 2^46 bytes of image is read without a per-page allocation") {
    TempDir d;
    LoadingSet ls;
    ls.image = {64 * 4096, 4096, 7};
    ls.method = "pagemap";
    ls.touches = {{1, 0, 0, kAccessRead}, {3, 0, 1, kAccessWrite}};
    const std::string p = d.path + "/x.ls";
    write_loadset(ls, p);
    auto b = bytes_of(p);
    size_t imgi = fuzz::chunk_offset(b, "IMGI");
    REQUIRE(imgi != SIZE_MAX);
    fuzz::store_u64(&b[imgi], uint64_t{1} << 46);
    fuzz::reseal(b);
    put(p, b);
    struct rusage before {}, after {};
    getrusage(RUSAGE_SELF, &before);
    auto t0 = std::chrono::steady_clock::now();
    LoadingSet got = read_loadset(p);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    getrusage(RUSAGE_SELF, &after);
    CHECK(got.image.size_bytes == (uint64_t{1} << 46));
    CHECK(got.touches.size() == 2);
    CHECK(secs < 1.0);
    CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024);  // KiB: was 2 GiB
    // A duplicate page is still found (by sorting, not by a bitmap).
    b = bytes_of(p);
    size_t tuch = fuzz::chunk_offset(b, "TUCH");
    REQUIRE(tuch != SIZE_MAX);
    fuzz::store_u64(&b[tuch + 24], 1);  // second touch names page 1 again
    fuzz::reseal(b);
    put(p, b);
    CHECK_THROWS_WITH_AS(read_loadset(p), doctest::Contains("appears twice"), BadInput);
}

TEST_CASE("reseal: a mutated artifact reaches the decoder, not the checksum") {
    TempDir d;
    LoadingSet ls;
    ls.image = {16 * 4096, 4096, 7};
    ls.method = "pagemap";
    ls.touches = {{1, 0, 0, kAccessRead}};
    const std::string p = d.path + "/x.ls";
    write_loadset(ls, p);
    auto b = bytes_of(p);
    size_t tuch = fuzz::chunk_offset(b, "TUCH");
    fuzz::store_u64(&b[tuch], 99);  // page past the end
    put(p, b);
    CHECK_THROWS_WITH_AS(read_loadset(p), doctest::Contains("checksum mismatch"), BadInput);
    fuzz::reseal(b);
    put(p, b);
    CHECK_THROWS_WITH_AS(read_loadset(p), doctest::Contains("past the image end"), BadInput);
}

TEST_CASE("JSON chunks nest at most kMaxJsonDepth levels") {
    TempDir d;
    LoadingSet ls;
    ls.image = {16 * 4096, 4096, 7};
    ls.method = "pagemap";
    nlohmann::json deep = "leaf";
    for (int i = 0; i < format::kMaxJsonDepth + 8; ++i) deep = nlohmann::json::array({deep});
    ls.meta["deep"] = deep;
    const std::string p = d.path + "/x.ls";
    write_loadset(ls, p);
    CHECK_THROWS_WITH_AS(read_loadset(p), doctest::Contains("nests JSON deeper"), BadInput);
    ls.meta["deep"] = nlohmann::json::array({nlohmann::json::array({1})});
    write_loadset(ls, p);
    CHECK_NOTHROW(read_loadset(p));
}

TEST_CASE("a report with bytes that are not UTF-8 (a part path) is printed, not thrown") {
    // Found by the libFuzzer placed target: describe_placed(...).dump() threw type_error 316.
    TempDir d;
    nlohmann::json j = {{"path", std::string("/tmp/\xff\xfe.rw")}};
    const std::string p = d.path + "/r.json";
    CHECK_NOTHROW(cli::print_report(p, j));
    CHECK(slurp(p).find("path") != std::string::npos);
}

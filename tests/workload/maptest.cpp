// SPDX-License-Identifier: Apache-2.0
// maptest: a stand-in for a VMM under snap-restore --exec. It maps a memory image the way
// QEMU maps memory-backend-file with share=off (open O_RDWR, reserve an aligned PROT_NONE
// area, then MAP_PRIVATE|MAP_FIXED over it), checks every page of the mapping against the
// image's bytes read with pread (which no preload touches), writes pages and checks that the
// writes are visible in memory and never reach the file, and maps another file to check that
// unrelated mappings pass through. Exit 0 only if every check holds.
//   maptest IMAGE [--writes N] [--seed S] [--shared] [--offset-pages K] [--written FILE] [--hold-ms MS] [--expect FILE]
// --hold-ms waits after mapping, before touching anything (a VMM loading its devices).
// --shared maps MAP_SHARED (a restore must refuse that). --offset-pages maps the image from
// page K on (a VMM with several regions in one file). --written FILE lists the image pages
// written, one decimal page number a line (sorted, unique), for checking a recording.
// --expect FILE compares the pages with FILE's bytes instead of IMAGE's (IMAGE is then a
// placeholder: a restore with the image absent from the host).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

uint64_t g_state = 1;
uint64_t next_random() {  // splitmix64
    uint64_t z = (g_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

bool read_file(const std::string& path, std::vector<unsigned char>& out) {
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return false;
    struct stat st;
    fstat(fd, &st);
    out.resize(size_t(st.st_size));
    size_t at = 0;
    while (at < out.size()) {
        ssize_t n = pread(fd, out.data() + at, out.size() - at, off_t(at));
        if (n <= 0) break;
        at += size_t(n);
    }
    close(fd);
    return at == out.size();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: maptest IMAGE [--writes N] [--seed S] [--shared] [--offset-pages K] [--written FILE] [--hold-ms MS] [--expect FILE]\n");
        return 2;
    }
    std::string path = argv[1];
    uint64_t writes = 256, offset_pages = 0, hold_ms = 0;  // hold: wait after mapping, as a VMM loading devices
    bool shared = false;
    std::string written_file, expect_file;
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "--shared") shared = true;
        else if (i + 1 < argc && k == "--writes") writes = std::strtoull(argv[++i], nullptr, 10);
        else if (i + 1 < argc && k == "--seed") g_state = std::strtoull(argv[++i], nullptr, 10);
        else if (i + 1 < argc && k == "--offset-pages") offset_pages = std::strtoull(argv[++i], nullptr, 10);
        else if (i + 1 < argc && k == "--written") written_file = argv[++i];
        else if (i + 1 < argc && k == "--hold-ms") hold_ms = std::strtoull(argv[++i], nullptr, 10);
        else if (i + 1 < argc && k == "--expect") expect_file = argv[++i];
        else {
            std::fprintf(stderr, "maptest: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    const size_t ps = 4096;
    std::vector<unsigned char> orig, file_before;
    if (!read_file(path, file_before) || file_before.size() % ps || file_before.size() <= offset_pages * ps) {
        std::fprintf(stderr, "maptest: %s: cannot read, or not a whole number of pages\n", path.c_str());
        return 1;
    }
    orig = file_before;
    if (!expect_file.empty() && (!read_file(expect_file, orig) || orig.size() != file_before.size())) {
        std::fprintf(stderr, "maptest: %s: cannot read, or not the size of %s\n", expect_file.c_str(), path.c_str());
        return 1;
    }
    const size_t off = offset_pages * ps, len = orig.size() - off, pages = len / ps;

    int fd = open(path.c_str(), O_RDWR);
    if (fd < 0) fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) {
        std::perror("maptest: open");
        return 1;
    }
    const size_t align = 2u << 20;
    char* area = static_cast<char*>(mmap(nullptr, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (area == MAP_FAILED) {
        std::perror("maptest: reserve");
        return 1;
    }
    char* want = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(area) + align - 1) & ~(uintptr_t(align) - 1));
    char* mem = static_cast<char*>(mmap(want, len, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd, off_t(off)));
    if (mem == MAP_FAILED || mem != want) {
        std::perror("maptest: mmap");
        return 1;
    }
    madvise(mem, len, MADV_HUGEPAGE);  // QEMU does this; a restore must not mind
    if (hold_ms) usleep(useconds_t(hold_ms * 1000));

    // An unrelated file mapping passes through.
    std::vector<unsigned char> self;
    int sfd = open("/proc/self/exe", O_RDONLY);
    read_file("/proc/self/exe", self);
    char* smap = static_cast<char*>(mmap(nullptr, self.size(), PROT_READ, MAP_PRIVATE, sfd, 0));
    int bad = 0;
    if (smap == MAP_FAILED || std::memcmp(smap, self.data(), self.size()) != 0) {
        std::fprintf(stderr, "maptest: an unrelated mapping does not read as its file\n");
        ++bad;
    }

    // Every page reads as the image.
    uint64_t wrong = 0;
    for (size_t p = 0; p < pages; ++p)
        if (std::memcmp(mem + p * ps, orig.data() + off + p * ps, ps) != 0) {
            if (wrong < 5) std::fprintf(stderr, "maptest: page %zu differs from the image\n", p + offset_pages);
            ++wrong;
        }
    // Writes land in memory only.
    std::vector<uint64_t> written;
    for (uint64_t i = 0; i < writes && pages; ++i) {
        uint64_t p = next_random() % pages;
        uint64_t v = next_random();
        std::memcpy(mem + p * ps + (v % (ps - 8)) / 8 * 8, &v, 8);
        std::memcpy(mem + p * ps, &v, 8);
        written.push_back(p);
        if (std::memcmp(mem + p * ps, &v, 8) != 0) ++wrong;
    }
    msync(mem, len, MS_SYNC);
    std::vector<unsigned char> after;
    read_file(path, after);
    const bool file_unchanged = after == file_before;
    if (!file_unchanged) std::fprintf(stderr, "maptest: the image file was written\n");
    munmap(mem, len);
    if (!written_file.empty()) {
        std::vector<bool> w(pages, false);
        for (uint64_t p : written) w[p] = true;
        FILE* f = std::fopen(written_file.c_str(), "w");
        if (!f) {
            std::perror("maptest: --written");
            return 1;
        }
        for (size_t p = 0; p < pages; ++p)
            if (w[p]) std::fprintf(f, "%zu\n", p + offset_pages);
        std::fclose(f);
    }
    std::printf("{\"pages\": %zu, \"wrong_pages\": %llu, \"writes\": %zu, \"file_unchanged\": %s}\n", pages,
                static_cast<unsigned long long>(wrong), written.size(), file_unchanged ? "true" : "false");
    return (wrong || bad || !file_unchanged) ? 1 : 0;
}

// SPDX-License-Identifier: Apache-2.0
// A scratch directory for one unit test (mkdtemp under /tmp), removed with everything in it
// when the test ends.
#pragma once
#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace snap::test {

struct TempDir {
    std::string path;
    explicit TempDir(const std::string& what = "unit") {
        std::string t = "/tmp/snapkit-" + what + "-XXXXXX";
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

// How many entries a directory holds (temporary files left behind show up here).
inline size_t entries_in(const std::string& dir) {
    size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) ++n;
    return n;
}

}  // namespace snap::test

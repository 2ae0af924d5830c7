// SPDX-License-Identifier: Apache-2.0
// Where the unit tests find the committed fixtures (testdata/README.md): $SNAPKIT_TESTDATA if
// set, else the source tree's testdata/ (SNAPKIT_TESTDATA_DIR, from tests/CMakeLists.txt).
// Read-only: a test that changes a fixture copies it to a scratch file first.
#pragma once
#include <cstdlib>
#include <string>

namespace snap::test {

inline std::string testdata(const std::string& name) {
    const char* env = std::getenv("SNAPKIT_TESTDATA");
    return std::string(env && *env ? env : SNAPKIT_TESTDATA_DIR) + "/" + name;
}

}  // namespace snap::test

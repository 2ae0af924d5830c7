// SPDX-License-Identifier: Apache-2.0
// Remembered verdicts, so that checking what a restore serves can stay on by default: "file F,
// as (device, inode, size, mtime, ctime), had XXH3-64 digest D". A file whose stat matches a
// remembered entry for the digest asked about is taken as verified without reading it; any
// write, truncation, rename over it, chmod or touch changes ctime (which no user can set back),
// so the entry no longer matches and the file is hashed again. What it cannot see: writes that
// bypass the file system (the block device underneath, or another host writing a shared disk).
// Entries live in SNAPKIT_CACHE, else $XDG_CACHE_HOME/snapkit, else $HOME/.cache/snapkit
// (directory 0700, files 0600), one small file per (device, inode); a cache that cannot be
// used only means hashing every time.
#pragma once
#include <cstdint>
#include <string>

namespace snap::verified {

// The cache directory ("" when none can be used).
std::string cache_dir();
// Does `path` match a remembered entry with this digest (same device, inode, size, times)?
bool known(const std::string& path, uint64_t digest);
// Remember that `path`, as it is now, has this digest (best effort, written atomically).
void remember(const std::string& path, uint64_t digest);

}  // namespace snap::verified

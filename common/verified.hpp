// SPDX-License-Identifier: Apache-2.0
// Remembered verdicts, so that checking what a restore serves can stay on by default, and so
// that an image is fingerprinted once, not once per tool run: "file F, as its stamp (device,
// inode, size, mtime, ctime; file.hpp), had XXH3-64 digest D". A file whose stamp matches a
// remembered entry is taken as verified (or its fingerprint as known) without reading it; any
// write, truncation, rename over it, chmod or touch changes ctime (which no user can set back),
// so the entry no longer matches and the file is hashed again. What it cannot see: writes that
// keep both mtime and ctime — writes that bypass the file system (the block device underneath,
// another host writing a shared disk), or a clock set back to the moment of an earlier write.
// Entries live in SNAPKIT_CACHE, else $XDG_CACHE_HOME/snapkit, else $HOME/.cache/snapkit
// (directory 0700, files 0600), one small file per (device, inode); a cache that cannot be
// used only means hashing every time.
#pragma once
#include "file.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace snap::verified {

// The cache directory ("" when none can be used).
std::string cache_dir();
// Does `path` match a remembered entry with this digest (same device, inode, size, times)?
bool known(const std::string& path, uint64_t digest);
// Remember that `path` has this digest (best effort, written atomically), as checked from the
// state `before` (its stamp taken before the first byte was read, at the wall-clock time
// `started`) — under the same guard as remember_content_digest below: nothing is remembered if
// the file changed while it was read, or so recently that a further write could keep its stamp.
// The digest is whatever the caller checks against (a part's digest is over its raw pages); an
// entry remembered as the whole file's content digest with the same digest is kept.
void remember(const std::string& path, const file::Stamp& before, timespec started, uint64_t digest);

// The XXH3-64 of a file's whole content (an image's fingerprint), when an entry for exactly
// this stamp remembers it as such.
std::optional<uint64_t> content_digest(const file::Stamp& stamp);
// Remember the whole-content digest of `path`, hashed from the state `before` (its stamp taken
// before the first byte was read, at the wall-clock time `started`). Nothing is remembered
// unless the file still has that stamp, and its ctime is older than `started` by more than the
// file system's timestamp granularity: a write in the same clock tick as the stamp would leave
// ctime unchanged, and the entry would outlive the content it describes. Returns whether the
// entry was written.
bool remember_content_digest(const std::string& path, const file::Stamp& before, timespec started, uint64_t digest);

// The wall-clock time, for `started` above.
timespec wall_clock_now();

}  // namespace snap::verified

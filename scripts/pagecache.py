# SPDX-License-Identifier: Apache-2.0
"""Page-cache helpers of the Python drivers (scripts/snapvm, bench/restore), defined once:
how much of a file the page cache holds (util-linux fincore, Debian util-linux-extra), and
making a file cold or warm before a measured restore. Python 3 standard library only."""

import json
import os
import subprocess


class Error(Exception):
    """A helper failed: the drivers print it as their own one-line error (exit 1)."""
    code = 1
    hint = None


def on_hugetlbfs(path):
    """True if `path` is on a hugetlbfs mount (its file system type, coreutils stat -f)."""
    r = subprocess.run(["stat", "-f", "-c", "%T", "--", path], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "hugetlbfs"


def resident_pages(*paths):
    """Pages (of the system's page size) of `paths` in the page cache, summed: one fincore
    for all of them (mincore over a shared read-only mapping of each file). A file on hugetlbfs
    is memory, all of it resident: its size is counted (fincore's mapping of it would take
    huge pages of its own, and fails when none are free)."""
    huge = [p for p in paths if on_hugetlbfs(p)]
    paths = [p for p in paths if p not in huge]
    in_huge = sum(os.path.getsize(p) // os.sysconf("SC_PAGE_SIZE") for p in huge)
    if not paths:
        return in_huge
    try:
        r = subprocess.run(["fincore", "--json", "--output", "PAGES,FILE", "--"] + list(paths),
                           capture_output=True, text=True)
    except FileNotFoundError:
        raise Error("fincore: not found (Debian package util-linux-extra)")
    if r.returncode != 0:
        raise Error("fincore: %s" % (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1])
    try:
        rows = json.loads(r.stdout)["fincore"]
        if len(rows) != len(paths):
            raise ValueError("%d rows for %d files" % (len(rows), len(paths)))
        return in_huge + sum(int(row["pages"]) for row in rows)
    except (ValueError, KeyError, TypeError) as e:
        raise Error("fincore: unexpected output (%s)" % e)


def drop(path):
    """Evict `path` from the page cache (clean pages only: images are never written)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)        # dirty pages (a fresh snapshot or part) cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    """Read `path` whole into the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 22):
            pass

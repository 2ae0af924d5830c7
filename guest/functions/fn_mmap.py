# SPDX-License-Identifier: Apache-2.0
"""mmap: map MIB MiB of anonymous memory, write every page, read it back,
unmap (FaaSnap's mmap).  Every page is a fresh guest page fault, the cost
a restored VM cannot avoid.  Input MIB:SEED; answer: checksum."""

import mmap

from snapfn import digest, parse

PAGE = 4096


def handler(arg):
    mib, seed = parse(arg, 4, 1)
    size = mib << 20
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        for i, off in enumerate(range(0, size, PAGE)):
            m[off] = (i * 31 + seed) & 0xFF
        sample = bytes(m[off] for off in range(0, size, PAGE))
    finally:
        m.close()
    return digest(sample)

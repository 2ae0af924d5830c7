# SPDX-License-Identifier: Apache-2.0
"""compression: zlib-compress KIB KiB of semi-compressible data and
decompress it again (FaaSnap's compression).  Input KIB:SEED; answer:
compressed size and digest."""

import zlib

from snapfn import Lcg, digest, parse

WORDS = [b"snapshot", b"restore", b"page", b"fault", b"memory", b"guest", b"tier",
         b"loading", b"set", b"zero", b"cold", b"warm", b"kernel", b"function"]


def handler(arg):
    kib, seed = parse(arg, 256, 1)
    rng = Lcg(seed)
    parts, n = [], 0
    while n < kib << 10:
        w = WORDS[rng.below(len(WORDS))] if rng.below(4) else rng.bytes(8)
        parts.append(w)
        n += len(w) + 1
    data = b" ".join(parts)[: kib << 10]
    packed = zlib.compress(data, 6)
    if zlib.decompress(packed) != data:
        return "roundtrip-mismatch"
    return "%d-%s" % (len(packed), digest(packed))

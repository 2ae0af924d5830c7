# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the Python functions: deterministic data, digests.

No `random` (its import seeds from the OS) and no `hashlib` (it drags in
OpenSSL): the builtin _sha256 module and a small LCG are enough, and they
give the same bytes on the host and in the guest.
"""

from _sha256 import sha256


def parse(arg, *defaults):
    """'N:SEED' -> (N, SEED) as ints; missing fields take the defaults."""
    fields = [int(x) for x in arg.split(":")] if arg else []
    return tuple(fields + list(defaults[len(fields):]))


class Lcg:
    """64-bit LCG (Knuth's MMIX constants); deterministic across machines."""

    def __init__(self, seed):
        self.state = (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.state >> 33

    def below(self, n):
        return self.next() % n

    def bytes(self, n):
        out = bytearray(n)
        for i in range(0, n, 4):
            v = self.next()
            out[i:i + 4] = v.to_bytes(4, "little")[: n - i]
        return bytes(out)


def digest(data):
    """First 16 hex digits of SHA-256 of bytes (or str, UTF-8)."""
    if isinstance(data, str):
        data = data.encode()
    return sha256(data).hexdigest()[:16]

# SPDX-License-Identifier: Apache-2.0
"""pyaes: AES-CTR encryption of SIZE bytes in pure Python (FaaSnap's
pyaes).  Input SIZE:SEED; answer: digest of the ciphertext, checked by
decrypting it again."""

import pyaes

from snapfn import Lcg, digest, parse


def handler(arg):
    size, seed = parse(arg, 4096, 1)
    rng = Lcg(seed)
    key = rng.bytes(16)
    plain = rng.bytes(size)
    cipher = pyaes.AESModeOfOperationCTR(key, pyaes.Counter(1)).encrypt(plain)
    if pyaes.AESModeOfOperationCTR(key, pyaes.Counter(1)).decrypt(cipher) != plain:
        return "decrypt-mismatch"
    return digest(cipher)

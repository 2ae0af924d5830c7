# SPDX-License-Identifier: Apache-2.0
"""matmul: multiply two N x N float64 matrices with numpy (FaaSnap's
matmul).  The operands hold small integers, so the product is exact in
float64 whatever SIMD path or BLAS the guest picks (the guest kernel runs
without XSAVE, so user code sees no AVX and takes other code paths than
the host).  Input N:SEED; answer: trace and digest of the product."""

import numpy as np

from snapfn import digest


def handler(arg):
    n, seed = (int(x) for x in arg.split(":"))
    i = np.arange(n * n, dtype=np.int64).reshape(n, n)
    a = ((i * 7 + seed) % 10).astype(np.float64)
    b = ((i * 3 + seed * 5) % 11).astype(np.float64)
    c = a @ b
    return "%d-%s" % (int(np.trace(c)), digest(c.astype(np.int64).tobytes()))

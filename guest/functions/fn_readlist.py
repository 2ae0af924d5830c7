# SPDX-License-Identifier: Apache-2.0
"""read-list: sum a slice of a large list built when the function loads
(FaaSnap's read-list).  The list lives in the snapshot; a restored VM must
bring its pages back to answer.  Input STRIDE:OFFSET; answer: the sum."""

N = 1 << 20            # 8 MiB of list slots (small ints are shared objects)
DATA = [(i * 2654435761 >> 7) % 251 for i in range(N)]


def handler(arg):
    stride, offset = (int(x) for x in arg.split(":"))
    return str(sum(DATA[offset::stride]))

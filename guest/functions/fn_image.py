# SPDX-License-Identifier: Apache-2.0
"""image: decode a JPEG, rotate it, encode it again with Pillow (FaaSnap's
image).  The JPEGs are drawn and encoded when the function loads (no data
files in the guest).  Input IMAGE:ANGLE (IMAGE 1 or 2); answer: size and
digest of the output JPEG."""

import io

from PIL import Image, ImageDraw

from snapfn import digest


def _picture(seed, size=(640, 480)):
    img = Image.new("RGB", size, (seed * 40 % 256, 90, 160))
    d = ImageDraw.Draw(img)
    for k in range(60):
        x, y = (k * 37 * seed) % size[0], (k * 53 + seed * 11) % size[1]
        d.ellipse((x, y, x + 40 + k, y + 30 + k), fill=((k * 7) % 256, (k * 13 * seed) % 256, 200))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


JPEGS = {1: _picture(1), 2: _picture(2)}


def handler(arg):
    which, angle = (int(x) for x in arg.split(":"))
    img = Image.open(io.BytesIO(JPEGS[which]))
    out = io.BytesIO()
    img.rotate(angle, expand=True).save(out, "JPEG", quality=85)
    data = out.getvalue()
    return "%d-%s" % (len(data), digest(data))

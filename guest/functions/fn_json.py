# SPDX-License-Identifier: Apache-2.0
"""json: build a document of N records, serialize, parse, re-serialize
(FaaSnap's json_serdes).  Input N:SEED; answer: digest of the final text."""

import json

from snapfn import Lcg, digest, parse

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
         "hotel", "india", "juliet", "kilo", "lima", "mike", "november"]


def handler(arg):
    n, seed = parse(arg, 1000, 1)
    rng = Lcg(seed)
    doc = {"seed": seed, "items": [
        {"id": i,
         "name": WORDS[rng.below(len(WORDS))] + "-" + str(rng.below(100000)),
         "score": rng.below(1_000_000) / 1000.0,
         "tags": [WORDS[rng.below(len(WORDS))] for _ in range(rng.below(5))],
         "active": rng.below(2) == 1,
         "parent": None if i == 0 else rng.below(i)}
        for i in range(n)]}
    text = json.dumps(doc)
    back = json.loads(text)
    return digest(json.dumps(back, sort_keys=True, separators=(",", ":")))

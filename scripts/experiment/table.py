#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The experiment's results table (scripts/experiment.mk): one row per strategy and input.

  table.py --out DIR --strategies "vanilla reap ..." --inputs "a b" --csv FILE --json FILE

Reads DIR/runs/STRATEGY-INPUT.json (replay's figures) and .restore.json (snap-restore's
report), DIR/fn.split.json (snap-split's report) and DIR/fn.placed.json (snap-place's).
Deterministic for the same inputs: the page counts and the parts' digests (page data in
first-touch order); the split's and the manifest's digests cover the loading sets' own, which
hold the recording's times; the times are measurements. Both files are written to a temporary and renamed into place.
Python 3 standard library only.
"""

import argparse
import csv
import io
import json
import os
import sys

COLUMNS = [
    ("strategy", "the restore strategy"),
    ("input", "whose loading set was replayed"),
    ("touched_pages", "pages the replay touched"),
    ("written_pages", "of them written"),
    ("verified_pages", "pages compared with the image after the run"),
    ("mismatched_pages", "pages that differed (must be 0)"),
    ("eager_bytes", "bytes installed before the first touch"),
    ("mappings", "mappings the plan laid"),
    ("ready_us", "open + mmap: the plan applied"),
    ("touch_us", "first to last touch"),
    ("restore_to_last_touch_us", "ready + touch"),
    ("private_dram_bytes", "anonymous memory after the last touch"),
    ("rw_part_digest", "XXH3-64 of the RW part's page data (names the part file)"),
    ("ro_part_digest", "the same for RO"),
    ("cold_part_digest", "the same for COLD"),
    ("split_digest", "the split's digest (covers the loading sets' digests: a re-recording changes it)"),
    ("placed_digest", "the placed manifest's digest (likewise)"),
]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("table.py: error: %s: %s" % (path, e))


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--strategies", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    split = load(os.path.join(a.out, "fn.split.json"))
    placed = load(os.path.join(a.out, "fn.placed.json"))
    part = {p["class"]: p["digest"] for p in placed.get("parts", [])}
    rows = []
    for s in a.strategies.split():
        for i in a.inputs.split():
            base = os.path.join(a.out, "runs", "%s-%s" % (s, i))
            rep, res = load(base + ".json"), load(base + ".restore.json")
            if res.get("strategy") != s:
                sys.exit("table.py: error: %s.restore.json: strategy %r, expected %r" % (base, res.get("strategy"), s))
            ver = rep.get("verify") or {}
            rows.append({
                "strategy": s,
                "input": i,
                "touched_pages": rep["pages"],
                "written_pages": rep["written_pages"],
                "verified_pages": ver.get("pages", 0),
                "mismatched_pages": ver.get("mismatched_pages", 0),
                "eager_bytes": res.get("eager_bytes", 0),
                "mappings": res.get("mappings", 0),
                "ready_us": round(rep["ready_ns"] / 1000, 1),
                "touch_us": round(rep["touch_ns"] / 1000, 1),
                "restore_to_last_touch_us": round(rep["restore_to_last_touch_ns"] / 1000, 1),
                "private_dram_bytes": rep.get("private_dram_bytes", 0),
                "rw_part_digest": part.get("rw", ""),
                "ro_part_digest": part.get("ro", ""),
                "cold_part_digest": part.get("cold", ""),
                "split_digest": split["digest"],
                "placed_digest": placed["digest"],
            })
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[c for c, _ in COLUMNS], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    doc = {
        "kind": "experiment_results",
        "columns": {c: d for c, d in COLUMNS},
        "split": {k: split[k] for k in ("digest", "image_pages", "zero_pages", "ro_pages", "rw_pages", "cold_pages", "touched_pages") if k in split},
        "placed_digest": placed["digest"],
        "rows": rows,
    }
    write_atomic(a.json, json.dumps(doc, indent=1) + "\n")
    write_atomic(a.csv, buf.getvalue())


if __name__ == "__main__":
    main()

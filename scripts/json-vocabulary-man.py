#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rewrite the key list of man/snapkit.7's JSON section from tests/json-vocabulary.tsv (the one
definition of the vocabulary; tests/cli/json_vocabulary.sh fails when the two differ).

  scripts/json-vocabulary-man.py        (from anywhere in a clone)
"""
import os

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
man = os.path.join(root, "man", "snapkit.7")
s = open(man).read()
a = s.index(".TP\n.BR ", s.index(".SH JSON"))
b = s.index(".SH EXIT STATUS", a)
rows = []
for line in open(os.path.join(root, "tests", "json-vocabulary.tsv")):
    if line.startswith("#") or not line.strip():
        continue
    key, typ, unit, meaning = line.rstrip("\n").split("\t")
    meaning = meaning.replace("\\", "\\\\")
    if meaning.startswith((".", "'")):
        meaning = "\\&" + meaning
    rows.append('.TP\n.BR %s " (%s%s)"\n%s' % (key, typ, "" if unit == "-" else ", " + unit, meaning))
tmp = man + ".tmp"
with open(tmp, "w") as f:
    f.write(s[:a] + "\n".join(rows) + "\n" + s[b:])
os.replace(tmp, man)

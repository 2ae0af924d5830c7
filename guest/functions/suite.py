# SPDX-License-Identifier: Apache-2.0
"""The function suite: names, record/test inputs, and how to load each.

Modelled on the FaaSnap / REAP suites.  Every function is
``handler(input: str) -> str``: the input is one token (no spaces) and the
answer one token the host can check (a number or a hex digest).  The first
input of INPUTS is used to record (warm-up before the snapshot), the others
to test.  Python modules live beside this file; native functions are
static binaries under /snapkit/<name> in the guest (build/guest/stage on
the host) that serve the same protocol over a pipe (see native.py).
"""

import importlib

# name -> (module or "native:BINARY", [record input, test input, ...])
# Test inputs differ in content from the record input but not in size: a
# larger test input would grow the guest's heap, and every new guest page
# is a fault in emulated kernel code under PVM (milliseconds each).
SUITE = {
    "hello":       ("fn_hello",       ["world", "snapkit"]),
    "json":        ("fn_json",        ["2500:1", "2500:2"]),
    "pyaes":       ("fn_pyaes",       ["6144:1", "6144:2"]),
    "read-list":   ("fn_readlist",    ["1:0", "3:1"]),
    "mmap":        ("fn_mmap",        ["2:1", "2:2"]),
    "compression": ("fn_compression", ["128:1", "128:2"]),
    "chameleon":   ("fn_chameleon",   ["200:20", "250:16"]),
    "pagerank":    ("native:pagerank", ["20000:1", "20000:2"]),
    "matmul":      ("fn_matmul",      ["128:1", "128:2"]),
    "image":       ("fn_image",       ["1:90", "2:270"]),
}


def names():
    return list(SUITE)


def inputs(name):
    return list(SUITE[name][1])


def load(name):
    """Import the function's module (untimed) and return its handler."""
    module, _ = SUITE[name]
    if module.startswith("native:"):
        return importlib.import_module("native").handler_for(module[len("native:"):])
    return importlib.import_module(module).handler

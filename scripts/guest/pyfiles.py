#!/usr/bin/python3.11
# SPDX-License-Identifier: Apache-2.0
"""Stage the guest's Python: only what the functions really use.

Runs the runner and every function of guest/functions/suite.py on the host
(the same Debian python3.11 and packages the guest gets), once per input,
in a child interpreter started like the guest's (-S -B), then copies into
the stage:
  * every module that ended up in sys.modules, as a sourceless .pyc in the
    legacy location (so no source is read and nothing compiled at boot),
  * every extension module and, via ldd, every shared library they and the
    interpreter need,
  * data files a package needs at run time (suite.DATA),
  * the runner, the function modules, and their expected answers
    (--expected, JSON: {function: {input: answer}}).
Under PVM each file the guest opens costs emulated syscalls and the
initramfs is unpacked by emulated kernel code, so smaller is faster.
"""

import argparse
import json
import os
import py_compile
import shutil
import subprocess
import sys

PYTHON = "/usr/bin/python3.11"
# Optional accelerators the stdlib falls back from cleanly; OpenSSL alone
# is ~5 MB.  (hashlib falls back to the builtin _sha256/_md5/_blake2.)
DENY = {"_hashlib", "_ssl"}

TRACE = r"""
import json, os, sys, time
root = sys.argv[1]
sys.path.insert(0, os.path.join(root, "guest/runner"))
import runner, suite
answers = {}
for name in suite.names():
    h = runner._handler(name)
    answers[name] = {}
    for arg in suite.inputs(name):
        answers[name][arg] = runner._serve_line(name + " " + arg).split(" ", 3)[3]
mods = {}
for key, m in list(sys.modules.items()):   # keys, not __name__: _decimal calls itself decimal
    f = getattr(m, "__file__", None)
    if f:
        mods[key] = f
data = [p for name in suite.names() for p in getattr(suite, "DATA", {}).get(name, [])]
json.dump({"modules": mods, "answers": answers, "data": data}, sys.stdout)
"""


def ldd(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>")[1].split("(")[0].strip()
            if target:
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split()[0])
    return libs


def copy(src, stage, dst=None):
    dst = os.path.join(stage, (dst or src).lstrip("/"))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(os.path.realpath(src), dst)
    shutil.copymode(os.path.realpath(src), dst)
    return dst


def compile_to(src, stage, dst):
    out = os.path.join(stage, dst.lstrip("/"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    py_compile.compile(src, cfile=out, dfile=src, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--expected", required=True)
    a = ap.parse_args()

    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0",
           "SNAPKIT_NATIVE_DIR": os.path.join(a.stage, "snapkit"),
           "SNAPKIT_FUNCTIONS": os.path.join(a.root, "guest/functions"), "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([PYTHON, "-S", "-B", "-c", TRACE, a.root], capture_output=True,
                       text=True, env=env, cwd="/")
    if r.returncode != 0:
        sys.exit("pyfiles.py: error: tracing the functions failed:\n" + r.stderr)
    trace = json.loads(r.stdout)

    so_files = [PYTHON]
    own = {"runner", "suite"}
    for name, f in sorted(trace["modules"].items()):
        if name.split(".")[0] in DENY or name == "__main__":
            continue
        if f.startswith(os.path.join(a.root, "guest")):
            own.add(name)
            continue
        if f.endswith(".py"):
            compile_to(f, a.stage, f[:-3] + ".pyc")
        elif f.endswith(".so"):
            copy(f, a.stage)
            so_files.append(f)
    # the interpreter finds its prefix by this landmark
    compile_to("/usr/lib/python3.11/os.py", a.stage, "/usr/lib/python3.11/os.pyc")

    copy(PYTHON, a.stage)
    libs = set()
    for f in so_files:
        libs.update(ldd(f))
    for lib in sorted(libs):
        copy(lib, a.stage)

    for p in trace["data"]:
        if os.path.isdir(p):
            for d, _, files in os.walk(p):
                for n in files:
                    if not n.endswith(".pyc"):
                        copy(os.path.join(d, n), a.stage)
        else:
            copy(p, a.stage)

    shutil.copyfile(os.path.join(a.root, "guest/runner/runner.py"),
                    os.path.join(a.stage, "snapkit/runner.py"))
    fdir = os.path.join(a.root, "guest/functions")
    for n in sorted(os.listdir(fdir)):
        if n.endswith(".py"):
            compile_to(os.path.join(fdir, n), a.stage, "/snapkit/functions/" + n[:-3] + ".pyc")

    with open(a.expected, "w") as f:
        json.dump(trace["answers"], f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

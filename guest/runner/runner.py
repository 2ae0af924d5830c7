# SPDX-License-Identifier: Apache-2.0
"""snapkit guest function runner.

Started by /init (PID 1).  Loads the function table, prints
``READY <uptime-s>`` on the serial console and then serves one request per
line::

    NAME INPUT            ->  RESULT NAME <in-guest-us> <answer>
    !warm NAME INPUT      ->  like NAME INPUT, the first call of a function
                              (imports, first-touch page faults) included
    !ping                 ->  PONG <uptime-s>
    unknown / failure     ->  ERROR NAME <reason-without-newlines>

The in-guest time covers only the handler call (``time.perf_counter_ns``),
never the module import: a function's module is imported and its handler
run once on its first request (the warm-up, untimed) so that later
requests find the runtime warm.  The same function modules run on the host
to compute the expected answers (scripts/guest/pyfiles.py), so a reply can
be checked byte for byte.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# /snapkit/functions in the guest; guest/functions when traced on the host
FUNCTIONS = os.environ.get("SNAPKIT_FUNCTIONS", os.path.join(HERE, "functions"))
sys.path[:0] = [FUNCTIONS, "/usr/lib/python3/dist-packages"]

import suite  # noqa: E402  (guest/functions/suite.py)

_loaded = {}


def _handler(name):
    h = _loaded.get(name)
    if h is None:
        h = suite.load(name)
        _loaded[name] = h
    return h


def _serve_line(line):
    parts = line.split()
    if not parts:
        return None
    if parts[0] == "!ping":
        return "PONG %s" % _uptime()
    warm = parts[0] == "!warm"
    if warm:
        parts = parts[1:]
    if len(parts) != 2:
        return "ERROR %s expected-NAME-INPUT" % (parts[0] if parts else "-")
    name, arg = parts
    try:
        handler = _handler(name)
        if warm:
            handler(arg)            # first touch outside the timed call
        t0 = time.perf_counter_ns()
        answer = handler(arg)
        t1 = time.perf_counter_ns()
        us = (t1 - t0) // 1000
        if isinstance(answer, tuple):      # native: (answer, its own time)
            answer, us = answer
    except Exception as e:  # report, keep serving
        why = ("%s:%s" % (type(e).__name__, e)).replace("\n", " ").replace(" ", "_")
        return "ERROR %s %s" % (name, why[:200])
    return "RESULT %s %d %s" % (name, us, answer)


def _uptime():
    try:
        with open("/proc/uptime") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def main():
    fd_in, fd_out = 0, 1
    os.write(fd_out, ("\nREADY %s\n" % _uptime()).encode())
    buf = b""
    while True:
        chunk = os.read(fd_in, 4096)
        if not chunk:
            time.sleep(0.1)
            continue
        buf += chunk.replace(b"\r", b"\n")
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            reply = _serve_line(raw.decode("ascii", "replace"))
            if reply is not None:
                os.write(fd_out, (reply + "\n").encode())


if __name__ == "__main__":
    main()

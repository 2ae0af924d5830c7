# SPDX-License-Identifier: Apache-2.0
"""Native functions: a static binary kept running as a co-process.

The binary reads one input per line on stdin and answers "<us> <answer>"
per line, timing its own work (so the pipe round trip, a few emulated
syscalls under PVM, stays out of the in-guest time).  It is started on the
function's first request (the untimed warm-up): a fork+exec in the guest
costs hundreds of guest page faults.
"""

import os

# /snapkit in the guest; the build stage on the host (set by pyfiles.py)
NATIVE_DIR = os.environ.get("SNAPKIT_NATIVE_DIR", "/snapkit")


class Native:
    def __init__(self, name):
        path = os.path.join(NATIVE_DIR, name)
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        self.pid = os.posix_spawn(path, [path], {"PATH": "/bin"}, file_actions=[
            (os.POSIX_SPAWN_DUP2, to_child_r, 0),
            (os.POSIX_SPAWN_DUP2, from_child_w, 1),
            (os.POSIX_SPAWN_CLOSE, to_child_r),
            (os.POSIX_SPAWN_CLOSE, from_child_w),
            (os.POSIX_SPAWN_CLOSE, self.to_child),
            (os.POSIX_SPAWN_CLOSE, self.from_child),
        ])
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""

    def __call__(self, arg):
        os.write(self.to_child, arg.encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = os.read(self.from_child, 4096)
            if not chunk:
                raise RuntimeError("native function exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        us, answer = line.decode().split(" ", 1)
        return answer, int(us)


def handler_for(name):
    return Native(name)

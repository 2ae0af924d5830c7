# SPDX-License-Identifier: Apache-2.0
"""hello: the smallest function; measures the runtime's fixed cost."""


def handler(arg):
    return "Hello," + arg + "!"

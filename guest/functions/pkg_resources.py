# SPDX-License-Identifier: Apache-2.0
"""Stand-in for setuptools' pkg_resources in the guest.

Chameleon imports pkg_resources at load time only to name package versions
(a scan of every distribution on sys.path) and to resolve "pkg:file" asset
specs, which the suite never uses.  The real module pulls ~100 modules into
the initramfs and scans the file system at import: too slow in a guest
whose syscalls are emulated.  This module sits first on sys.path on the
host and in the guest, so both compute the same answers.
"""


def find_distributions(path_item, only=False):
    return iter(())


def resource_filename(package, resource):
    raise NotImplementedError("pkg_resources stand-in: asset specs are not supported")

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Set up (scripts/setup.sh) and run the whole test suite with ctest: unit, cli, priv (root-only
# kernel features) and vm (real QEMU/KVM snapshots) tests. Tests that lack a capability say
# "skipped: why". Extra arguments go to ctest (e.g. -L unit, -R split).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
cd "${SNAPKIT_BUILD:-$root/build}"
ctest --output-on-failure "$@"

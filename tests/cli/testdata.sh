#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# testdata/ is exactly what scripts/testdata.sh makes with this build's tools: a change to a
# format or a tool's output that alters those bytes must come with regenerated testdata/.
set -u
bin=${1:?bin dir}
root=${SNAPKIT_ROOT:?}
"$root/scripts/testdata.sh" --check --bin "$bin" || {
  echo "FAIL: testdata/ is stale against scripts/testdata.sh (the files above); run scripts/testdata.sh and commit testdata/"
  exit 1
}

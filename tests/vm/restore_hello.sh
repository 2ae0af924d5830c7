#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real VM: snapshot hello (if needed), restore it, invoke it with its test
# input, check the answer; then again with the image evicted from the page
# cache.  usage: restore_hello.sh [SNAPKIT_BIN]   (exit 77 = skipped)
source "$(dirname "$0")/lib.bash"
probe_vm
ensure_snapshot hello
restore_check hello
restore_check hello --cold

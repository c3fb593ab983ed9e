#!/usr/bin/env bash
# Runs the test suite of a built tree. The default set leaves out tests labelled `long`;
# ABLATE_TEST_ALL=1 runs them too.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
exclude=(-LE long)
[ "${ABLATE_TEST_ALL:-0}" = 1 ] && exclude=()
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "${exclude[@]}"

#!/usr/bin/env bash
# test.sh -- install what is missing, build, and run every test twice: in a
# normal build (build/) and under AddressSanitizer + UBSan (build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/build.sh build
ctest --test-dir build --output-on-failure -j"$jobs"

scripts/build.sh build-asan -DCHAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

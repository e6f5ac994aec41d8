#!/usr/bin/env bash
# test.sh -- install what is missing, build, and run every test: the whole
# suite in a normal build (build/, which also runs one conversation under
# valgrind) and again under AddressSanitizer + UBSan with leak detection
# (build-asan/), then each libFuzzer target for a bounded time
# (CHAT_FUZZ_SECONDS, default 60; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/build.sh build
ctest --test-dir build --output-on-failure -j"$jobs"

scripts/build.sh build-asan -DCHAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

fuzz_seconds=${CHAT_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
  scripts/fuzz.sh "$fuzz_seconds"
fi

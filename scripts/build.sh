#!/usr/bin/env bash
# build.sh [BUILD_DIR [cmake options...]] -- install what is missing, then
# configure and build (default: build/, programs in build/bin/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"

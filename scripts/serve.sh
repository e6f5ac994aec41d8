#!/usr/bin/env bash
# serve.sh [chat-server options...] -- install what is missing, build, and
# start chat-server on its defaults (127.0.0.1:7700, ./chat.db).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build
exec build/bin/chat-server "$@"

#!/usr/bin/env bash
# serve.sh [chat-server options...] -- install what is missing, build, and
# start chat-server on its defaults (127.0.0.1:7700, ./chat.db).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build
if [ ! -x build/bin/chat-server ]; then
  echo "serve: chat-server is not built yet (see the open issues)" >&2
  exit 1
fi
exec build/bin/chat-server "$@"

#!/usr/bin/env bash
# engines.sh -- the stored path on both engines in one run (issue 14, step
# 1): chat-bench --mode offline against chat-server on SQLite, then on a
# Redis started here (appendonly yes, appendfsync always, in a temporary
# directory), ROUNDS times alternating. Prints one JSON line per run.
#   bash bench/engines.sh [ROUNDS] [chat-bench args...]
set -euo pipefail
bin=${BIN:-build/bin}
rounds=${1:-3}
shift || true
args=(--mode offline --pairs 100 --window 64 --size 64 --messages 1000 "$@")
dir=$(mktemp -d /tmp/chat-engines-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
  --appendfsync always --save '' --daemonize no >"$dir/redis.log" 2>&1 &
rpid=$!
srv=
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
until redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done
run() { # engine db
  local port log="$dir/server-$1.log"
  port=$(free_port)
  "$bin/chat-server" --listen "127.0.0.1:$port" --db "$2" --hash-cost min \
    --rate-limit 0 --log-level warn 2>"$log" &
  srv=$!
  until grep -q "listening on" "$log"; do sleep 0.05; done
  printf '{"engine":"%s","load":"%s","result":' "$1" "$(cut -d' ' -f1 /proc/loadavg)"
  "$bin/chat-bench" --server "127.0.0.1:$port" --json "${args[@]}" | tr -d '\n'
  echo "}"
  kill -TERM "$srv"; wait "$srv" || true
  srv=
}
for i in $(seq "$rounds"); do
  rm -f "$dir/chat.db"*
  redis-cli -p "$rport" flushall >/dev/null
  run sqlite "$dir/chat.db"
  run redis "redis://127.0.0.1:$rport"
done

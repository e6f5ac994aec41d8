#!/bin/bash
# ab.sh -- two chat-server builds, run alternately on the same chat-bench
# load, each run on a fresh server and database; prints every run, the
# medians and the ratio of the medians (A / B).
#
# usage: bench/ab.sh A_BIN_DIR B_BIN_DIR [RUNS] [-- chat-bench options]
#   RUNS      alternated pairs (default 5)
#   options   default: --mode offline --pairs 100 --window 64 --size 64
#             --messages 4000 (the stored path, issue 12)
# chat-bench is A_BIN_DIR's. Example, against the old server 69c51c6
# built Release in /tmp/old:
#   bench/ab.sh build-rel/bin /tmp/old/build/bin 7
#   bench/ab.sh build-rel/bin /tmp/old/build/bin 3 -- --pairs 100 \
#     --window 64 --size 1024 --messages 4000
# Development tool: no figure here is a test.
set -u
A=$1
B=$2
RUNS=${3:-5}
shift $(($# >= 3 ? 3 : $#))
[ "${1:-}" = "--" ] && shift
LOAD=("$@")
[ ${#LOAD[@]} -eq 0 ] && LOAD=(--mode offline --pairs 100 --window 64 \
  --size 64 --messages 4000)
BENCH=$A/chat-bench

one() { # BIN_DIR -> msgs/s on stdout
  local d port pid i
  d=$(mktemp -d /tmp/chat-ab.XXXXXX)
  "$1/chat-server" --listen 127.0.0.1:0 --db "$d/chat.db" --hash-cost min \
    --rate-limit 0 --max-clients 20000 --log-level warn 2>"$d/log" &
  pid=$!
  for i in $(seq 200); do
    port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$d/log" | sed 's/.*://')
    [ -n "$port" ] && break
    sleep 0.05
  done
  if [ -n "$port" ]; then
    "$BENCH" --server "127.0.0.1:$port" --json --timeout 60 "${LOAD[@]}" \
      >"$d/out.json"
  fi
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  grep -o '"msgs_per_sec": *[0-9.]*' "$d/out.json" 2>/dev/null |
    head -1 | sed 's/.*: *//'
  rm -rf "$d"
}

ra=()
rb=()
for i in $(seq "$RUNS"); do
  a=$(one "$A")
  b=$(one "$B")
  echo "run $i: A $a  B $b"
  ra+=("${a:-0}")
  rb+=("${b:-0}")
done
python3 - "${ra[*]}" "${rb[*]}" <<'EOF'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print("median A %.0f  B %.0f  A/B %.3f" % (ma, mb, ma / mb if mb else 0))
print("per pair", [round(x / y, 2) if y else None for x, y in zip(a, b)])
EOF

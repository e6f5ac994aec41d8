#!/bin/sh
# issue12.sh -- the runs behind "Store as the authority (issue 12)" in
# docs/PERFORMANCE.md, in order. usage: bench/issue12.sh [BUILD] [OLD_BUILD]
# BUILD: this tree's Release build (default build-rel); OLD_BUILD: a build of
# 69c51c6 (only chat-server is used; this tree's chat-bench drives both).
# Heavy: writes a ~1.8 GB store under $TMPDIR (deleted at the end).
set -eu
cd "$(dirname "$0")/.."
b=${1:-build-rel}
old=${2:-}
t=$(mktemp -d "${TMPDIR:-/tmp}/chat-issue12-XXXXXX")
trap 'rm -rf "$t"' EXIT

# 1-2. Populate, then start-up time and RSS vs an empty store.
/usr/bin/time -f "populate wall %e s, max RSS %M kB" \
  "$b/bin/chat-populate" --db "$t/big.db" --users 1000000 \
  --contacts 5000000 --messages 1000000 --size 1024
python3 bench/store_bench.py "$b" startup --db "$t/big.db" --runs 3
rm -f "$t"/big.db*

# 3. RSS holding 200,000 x 1 KiB for offline users vs none.
python3 bench/store_bench.py "$b" held --pairs 200 --messages 200000 --size 1024
# 4. 100,000 held for one user, drained with acks.
python3 bench/store_bench.py "$b" drain --messages 100000 --size 1024
# 5. 5,000 token logins after a restart vs 100 interactive-cost passwords.
python3 bench/store_bench.py "$b" tokens --users 5000 --password-logins 100 \
  --concurrency 64
# 7. SIGKILL 2 s into relayed sends to a never-acking recipient.
python3 bench/store_bench.py "$b" sigkill --size 64 --window 64 --kill-after 2

# 6. Relay (and stored) throughput, new and old server, same bench.
python3 bench/perf.py "$b" --runs 3 --only relay-64,relay-1k,offline-store
if [ -n "$old" ]; then
  mkdir -p "$t/old/bin"
  ln -s "$(realpath "$old")/bin/chat-server" "$t/old/bin/chat-server"
  ln -s "$(realpath "$b")/bin/chat-bench" "$t/old/bin/chat-bench"
  python3 bench/perf.py "$t/old" --runs 3 --only relay-64,relay-1k,offline-store
fi

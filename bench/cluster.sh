#!/usr/bin/env bash
# cluster.sh -- cross-node relay against single-node relay, in one run
# (issue 14, docs/PERFORMANCE.md "Cluster: cross-node relay").
#
# Starts its own redis-server (a temporary directory, a free port,
# appendonly yes / appendfsync always, as engines.sh does), two cluster
# nodes n1 and n2 on it, and a plain single node (SQLite, a fresh temporary
# file). Then ROUNDS times, alternating, at 64 B and 1 KiB, window 64:
#   single  both users of every pair on the single node (the baseline)
#   same    both users on n1 of the cluster
#   cross   senders on n1, receivers on n2 (chat-bench --server-b)
# For every run: messages/s, latency, errors, and the CPU time (utime +
# stime from /proc/PID/stat) of each server process, of redis-server and of
# chat-bench over the whole run, divided by the messages delivered (set-up
# included, so slightly high). Redis's commandstats are reset before every
# cross run and summed afterwards. The summary gives medians, the per-round
# ratios cross/single and cross/same, and what Redis spends per message
# (commandstats).
#
#   bash bench/cluster.sh [ROUNDS]          (from the tree; default 3)
# Environment: BIN (default build/bin), PAIRS (100), WINDOW (64),
# MSGS_LOCAL_64 / MSGS_LOCAL_1K (per sender, single and same runs; default
# 10000 / 5000), MSGS_CROSS_64 / MSGS_CROSS_1K (cross runs; 400 / 300),
# KEEP=1 keeps the temporary directory (logs, results.jsonl).
# Exit status 1 when any run counted errors (after the whole report).
set -euo pipefail
bin=${BIN:-build/bin}
rounds=${1:-3}
pairs=${PAIRS:-100}
window=${WINDOW:-64}
m_local_64=${MSGS_LOCAL_64:-10000}
m_local_1k=${MSGS_LOCAL_1K:-5000}
m_cross_64=${MSGS_CROSS_64:-400}
m_cross_1k=${MSGS_CROSS_1K:-300}
for b in chat-server chat-bench; do
  [ -x "$bin/$b" ] || { echo "cluster.sh: no $bin/$b (set BIN)" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "cluster.sh: no redis-server" >&2; exit 2; }

dir=$(mktemp -d /tmp/chat-cluster-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "cluster.sh: kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tck=$(getconf CLK_TCK)
cpu_ns() { # pid: utime + stime in ns (fields 14 and 15; comm has no spaces here)
  awk -v t="$tck" '{ printf "%.0f\n", ($14 + $15) * 1e9 / t }' "/proc/$1/stat"
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
  --appendfsync always --save '' --daemonize no >"$dir/redis.log" 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 200); do
  redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
redis-cli -p "$rport" ping | grep -q PONG

addr= spid=
start_server() { # name args... -> sets addr and spid
  local name=$1 log="$dir/$1.log"
  shift
  : >"$log"
  "$bin/chat-server" --listen 127.0.0.1:0 --hash-cost min --rate-limit 0 \
    --log-level warn "$@" 2>"$log" &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 200); do
    addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$addr" ] && return 0
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  echo "cluster.sh: $name did not start:" >&2
  cat "$log" >&2
  exit 1
}
start_server single --db "$dir/single.db"
single_addr=$addr single_pid=$spid
start_server n1 --db "redis://127.0.0.1:$rport" --node n1
n1_addr=$addr n1_pid=$spid
start_server n2 --db "redis://127.0.0.1:$rport" --node n2
n2_addr=$addr n2_pid=$spid

res="$dir/results.jsonl"
: >"$res"
load() { cut -d' ' -f1 /proc/loadavg; }
echo "cluster.sh: redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on :$rport," \
  "single $single_addr, n1 $n1_addr, n2 $n2_addr; $rounds rounds," \
  "$pairs pairs, window $window; load $(load)" >&2

run() { # round scenario size messages server-pid bench-args...
  local round=$1 scen=$2 size=$3 msgs=$4 main=$5
  shift 5
  local c0m c0b c0r c1m c1b c1r bcpu out rc=0 l0
  [ "$scen" = cross ] && redis-cli -p "$rport" config resetstat >/dev/null
  l0=$(load)
  c0m=$(cpu_ns "$main"); c0b=$(cpu_ns "$n2_pid"); c0r=$(cpu_ns "$rpid")
  # bash's `time` gives chat-bench's own user + system seconds
  out=$( { TIMEFORMAT='%U %S'; time "$bin/chat-bench" --json --pairs "$pairs" \
      --window "$window" --size "$size" --messages "$msgs" --timeout 120 "$@" \
      2>"$dir/bench.err"; } 2>"$dir/bench.time" ) || rc=$?
  c1m=$(cpu_ns "$main"); c1b=$(cpu_ns "$n2_pid"); c1r=$(cpu_ns "$rpid")
  bcpu=$(awk '{ printf "%.0f\n", ($1 + $2) * 1e9 }' "$dir/bench.time")
  if [ -z "$out" ]; then
    echo "cluster.sh: chat-bench failed (rc $rc):" >&2
    cat "$dir/bench.err" >&2
    exit 1
  fi
  local stats='{}'
  [ "$scen" = cross ] && stats=$(redis-cli -p "$rport" info commandstats |
    python3 -c 'import sys, json
d = {}
for l in sys.stdin:
    if l.startswith("cmdstat_"):
        k, v = l.strip()[8:].split(":", 1)
        f = dict(x.split("=") for x in v.split(","))
        d[k] = [int(f["calls"]), int(f["usec"])]
print(json.dumps(d))')
  printf '{"round":%s,"scenario":"%s","size":%s,"rc":%s,"load":[%s,%s],"cpu_ns":{"main":%s,"n2":%s,"redis":%s,"bench":%s},"cmdstats":%s,"bench":%s}\n' \
    "$round" "$scen" "$size" "$rc" "$l0" "$(load)" "$((c1m - c0m))" \
    "$((c1b - c0b))" "$((c1r - c0r))" "$bcpu" "$stats" "$(echo "$out" | tr -d '\n')" >>"$res"
  tail -n1 "$res" | python3 -c 'import sys, json
r = json.loads(sys.stdin.read()); b = r["bench"]
print("  round %d %-6s %5d B  %9.0f msgs/s  errors %d" % (r["round"], r["scenario"],
      r["size"], b["msgs_per_sec"], b["errors"]["total"]))' >&2
}

for i in $(seq "$rounds"); do
  for size in 64 1024; do
    if [ "$size" = 64 ]; then ml=$m_local_64 mc=$m_cross_64; else ml=$m_local_1k mc=$m_cross_1k; fi
    run "$i" single "$size" "$ml" "$single_pid" --server "$single_addr"
    run "$i" same "$size" "$ml" "$n1_pid" --server "$n1_addr"
    run "$i" cross "$size" "$mc" "$n1_pid" --server "$n1_addr" --server-b "$n2_addr"
  done
done

warns=$(cat "$dir"/single.log "$dir"/n1.log "$dir"/n2.log | grep -vc "listening on" || true)
[ "$warns" = 0 ] || echo "cluster.sh: the servers logged $warns warning/error lines (KEEP=1 to read them)" >&2

python3 - "$res" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median

def errs(b):
    e = b["errors"]
    return e["total"], ", ".join("%s %d" % (k, v) for k, v in e.items()
                                 if k != "total" and isinstance(v, int) and v)

def us_per(ns, n):
    return ns / 1000.0 / n if n else float("nan")

print("Per run (CPU: microseconds per delivered message, whole run; main = the")
print("single node, or n1 for same and cross):")
print("| round | scenario | size | msgs/s | p50 ms | p99 ms | delivered | errors | CPU main | CPU n2 | CPU redis | CPU bench | load |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    b, c = r["bench"], r["cpu_ns"]
    n = b["delivered"]
    e, kinds = errs(b)
    print("| %d | %s | %d | %.0f | %.1f | %.1f | %d | %d%s | %.2f | %.2f | %.2f | %.2f | %.2f-%.2f |" % (
        r["round"], r["scenario"], r["size"], b["msgs_per_sec"],
        b["latency_us"]["p50"] / 1000, b["latency_us"]["p99"] / 1000, n, e,
        " (" + kinds + ")" if kinds else "",
        us_per(c["main"], n), us_per(c["n2"], n), us_per(c["redis"], n),
        us_per(c["bench"], n), r["load"][0], r["load"][1]))

print()
print("Medians over the rounds:")
print("| size | scenario | msgs/s | CPU us/msg: main | n2 | redis | bench | nodes + redis |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
by = {}
for r in rows:
    by.setdefault((r["size"], r["scenario"]), []).append(r)
for size in (64, 1024):
    for scen in ("single", "same", "cross"):
        rs = by.get((size, scen), [])
        if not rs:
            continue
        f = lambda k: med(us_per(r["cpu_ns"][k], r["bench"]["delivered"]) for r in rs)
        tot = med(us_per(r["cpu_ns"]["main"] + r["cpu_ns"]["n2"] + r["cpu_ns"]["redis"],
                         r["bench"]["delivered"]) for r in rs)
        print("| %d | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            size, scen, med(r["bench"]["msgs_per_sec"] for r in rs),
            f("main"), f("n2"), f("redis"), f("bench"), tot))

print()
print("Ratios of throughput, per round (same round, same machine state):")
print("| size | round | cross / single | cross / same | same / single |")
print("| --- | --- | --- | --- | --- |")
for size in (64, 1024):
    rat = []
    for r in sorted({r["round"] for r in rows}):
        v = {s: next((x["bench"]["msgs_per_sec"] for x in rows if x["round"] == r
                      and x["size"] == size and x["scenario"] == s), None)
             for s in ("single", "same", "cross")}
        if None in v.values() or not v["single"] or not v["same"]:
            continue
        t = (v["cross"] / v["single"], v["cross"] / v["same"], v["same"] / v["single"])
        rat.append(t)
        print("| %d | %d | %.3f | %.3f | %.3f |" % ((size, r) + t))
    if rat:
        print("| %d | median | **%.3f** | **%.3f** | %.3f |" % (
            size, med(t[0] for t in rat), med(t[1] for t in rat), med(t[2] for t in rat)))
print()
print("Target: cross-node >= 0.40 of single-node relay throughput.")

print()
print("Redis commands per cross-node message (commandstats, summed over the")
print("cross runs). Calls made by scripts are counted on their own lines too,")
print("and a command's time includes what it ran: exec's the commands of its")
print("MULTI, evalsha's the commands its script called. Redis's own CPU (from")
print("/proc) is the figure to go by; the times show where it goes:")
for size in (64, 1024):
    rs = by.get((size, "cross"), [])
    if not rs:
        continue
    n = sum(r["bench"]["delivered"] for r in rs)
    tot = {}
    for r in rs:
        for k, (calls, usec) in r["cmdstats"].items():
            t = tot.setdefault(k, [0, 0])
            t[0] += calls
            t[1] += usec
    allc = sum(v[0] for v in tot.values())
    cpu = sum(r["cpu_ns"]["redis"] for r in rs) / 1000.0 / n
    print("%d B: %d messages, %.1f commands per message (script calls included);"
          " Redis CPU %.1f us per message" % (size, n, allc / n, cpu))
    print("| command | calls/msg | us/msg | us/call |")
    print("| --- | --- | --- | --- |")
    for k, (calls, usec) in sorted(tot.items(), key=lambda kv: -kv[1][1])[:10]:
        print("| %s | %.2f | %.2f | %.2f |" % (k, calls / n, usec / n, usec / calls if calls else 0))
sys.exit(1 if any(r["bench"]["errors"]["total"] for r in rows) else 0)
EOF

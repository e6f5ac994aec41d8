#!/usr/bin/env bash
# topology.sh -- direct links across real NATs: network namespaces, veth
# pairs and nftables NAT on this kernel, a chat-server on the "public" side
# and two chat-clients behind NATs (docs/NAT.md).
#
#   tests/nat/topology.sh BIN_DIR CASE [TRIES]
#
# CASE is one of
#   eim        both behind endpoint-independent NAT (plain masquerade):
#              direct, punched
#   public     alice public, bob behind NAT: direct both ways (alice->bob
#              reverse or dialed, bob->alice dialed)
#   symmetric  alice behind masquerade, bob behind masquerade fully-random:
#              relay within 3 s
#   firewall   alice public, bob behind a firewall that drops all inbound
#              but the server's: relay within 3 s
#   samenat    both behind one NAT: direct over the LAN address
#   delay      50 ms each way on both WAN links (a userspace delay line
#              between TUN devices, tests/nat/delayline.py; this kernel has
#              no netem): still punched
# With TRIES > 1 it makes that many fresh links (a new alice each time) and
# prints one line per try: "try N PATH MS" (MS: connect asked -> link
# proven, from alice's log), for bench/nat.sh.
#
# Exit 0 pass, 1 fail, 77 skip (ctest's SKIP_RETURN_CODE) with the reason.
# Everything it made is removed on exit, whatever happens (trap).
set -u

BIN=${1:?usage: topology.sh BIN_DIR CASE [TRIES]}
CASE=${2:?usage: topology.sh BIN_DIR CASE [TRIES]}
TRIES=${3:-1}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; dump; exit 1; }
say() { echo "# $*"; }

now_ms() { date +%s%3N; }

# wait_for FILE PATTERN SECONDS: until a line of FILE matches (grep -E).
wait_for() {
  local f=$1 pat=$2 end=$(( $(now_ms) + $3 * 1000 ))
  while [ "$(now_ms)" -lt "$end" ]; do
    grep -qE "$pat" "$f" 2>/dev/null && return 0
    sleep 0.02
  done
  return 1
}

[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v nft >/dev/null || skip "no nft (nftables)"
[ -x "$BIN/chat-server" ] && [ -x "$BIN/chat-client" ] ||
  fail "no chat-server/chat-client in $BIN"

ID=$$
P=n$ID                       # namespace prefix, unique per run
WORK=$(mktemp -d /tmp/chat-nat.XXXXXX)
PIDS=()
NSS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

dump() {
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [ -f "$f" ] || continue
    echo "---- $(basename "$f") ----"
    tail -n 40 "$f"
  done
}

ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
mkns() {
  ip netns add "$P-$1" 2>/dev/null || skip "cannot make network namespaces"
  NSS+=("$P-$1")
  ns "$1" ip link set lo up
}

# The public side: namespace pub holds a bridge (the "internet",
# 203.0.113.0/24) and the server at 203.0.113.1.
mkpub() {
  mkns pub
  ns pub ip link add br0 type bridge
  ns pub ip addr add 203.0.113.1/24 dev br0
  ns pub ip link set br0 up
}

# Where the WAN links are delayed (case delay): the one-way delay in ms of
# each router's link to pub; empty for plain veths to pub's bridge.
WAN_DELAY_MS=

# link NS IFNAME-IN-NS: a veth from NS's IFNAME to a port of pub's bridge.
plug() {
  local n=$1 ifn=$2
  local peer="v$ID$n"
  ip link add "$peer" type veth peer name "x$ID$n" || fail "veth"
  ip link set "x$ID$n" netns "$P-$n"
  ns "$n" ip link set "x$ID$n" name "$ifn"
  ip link set "$peer" netns "$P-pub"
  ns pub ip link set "$peer" master br0 up
  ns "$n" ip link set "$ifn" up
}

# router NAME WAN_IP LAN_PREFIX MASQ [FIREWALL]: a NAT router whose LAN is
# LAN_PREFIX.0/24 (it is .1), masquerading (MASQ: "masquerade" or
# "masquerade fully-random") and dropping unsolicited inbound, as home
# routers do. FIREWALL=strict: inbound only from the server.
router() {
  local r=$1 wan=$2 lan=$3 masq=$4 fw=${5:-}
  mkns "$r"
  if [ -n "$WAN_DELAY_MS" ]; then
    delayed_wan "$r" "$wan"
  else
    plug "$r" wan
    ns "$r" ip addr add "$wan/24" dev wan
  fi
  ns "$r" ip link add br1 type bridge
  ns "$r" ip addr add "$lan.1/24" dev br1
  ns "$r" ip link set br1 up
  ns "$r" sysctl -qw net.ipv4.ip_forward=1
  local allow="ct state established,related accept"
  [ "$fw" = strict ] && allow="ip saddr 203.0.113.1 ct state established,related accept"
  ns "$r" nft -f - <<NFT || fail "nft on $r"
table ip nat {
  chain post { type nat hook postrouting priority 100; oifname "wan" $masq; }
}
table inet filter {
  chain input { type filter hook input priority 0; policy accept;
    iifname "wan" $allow; iifname "wan" drop; }
  chain forward { type filter hook forward priority 0; policy accept;
    iifname "wan" $allow; iifname "wan" drop; }
}
NFT
}

# delayed_wan ROUTER WAN_IP: instead of a veth to pub's bridge, ROUTER's wan
# is a point-to-point TUN link to pub (203.0.113.1 there, on TUN "t<ROUTER>"),
# and a delay line (tests/nat/delayline.py) carries its packets between the
# two TUNs, WAN_DELAY_MS late each way. pub routes between its TUNs, so
# router-to-router packets cross two delay lines.
delayed_wan() {
  local r=$1 wan=$2 t="t$1"
  command -v python3 >/dev/null || skip "no python3 for the delay line"
  ns "$r" ip tuntap add dev wan mode tun 2>"$WORK/tun.err" ||
    skip "cannot make TUN devices ($(head -c 120 "$WORK/tun.err" | tr '\n' ' ')): no delay line"
  ns pub ip tuntap add dev "$t" mode tun || fail "tuntap in pub"
  ns "$r" ip addr add "$wan" peer 203.0.113.1 dev wan
  ns pub ip addr add 203.0.113.1 peer "$wan" dev "$t"
  ns "$r" ip link set wan up
  ns pub ip link set "$t" up
  ns "$r" ip route add 203.0.113.0/24 dev wan
  ns pub sysctl -qw net.ipv4.ip_forward=1
  python3 "$(dirname "$0")/delayline.py" --delay-ms "$WAN_DELAY_MS" \
    "$P-$r" wan "$P-pub" "$t" >"$WORK/delay-$r.out" 2>"$WORK/delay-$r.err" &
  PIDS+=($!)
  wait_for "$WORK/delay-$r.out" '^ready$' 5 || fail "delay line for $r did not start"
}

# rtt_ms NS HOST: the ms a TCP connect from NS to HOST's closed port 9 takes
# to be refused (SYN out, RST back): one round trip.
rtt_ms() {
  ns "$1" python3 -c "
import socket, time
s = socket.socket(); t = time.monotonic()
try: s.connect(('$2', 9))
except OSError: pass
print(round((time.monotonic() - t) * 1000))"
}

# host NAME ROUTER IP: a client namespace on ROUTER's LAN.
host() {
  local h=$1 r=$2 addr=$3 peer="l$ID$1"
  mkns "$h"
  ip link add "$peer" type veth peer name "y$ID$h" || fail "veth"
  ip link set "y$ID$h" netns "$P-$h"
  ns "$h" ip link set "y$ID$h" name eth0
  ip link set "$peer" netns "$P-$r"
  ns "$r" ip link set "$peer" master br1 up
  ns "$h" ip link set eth0 up
  ns "$h" ip addr add "$addr/24" dev eth0
  ns "$h" ip route add default via "${addr%.*}.1"
}

# pubhost NAME IP: a client on the public side itself.
pubhost() {
  mkns "$1"
  plug "$1" eth0
  ns "$1" ip addr add "$2/24" dev eth0
}

case "$CASE" in
eim)
  mkpub
  router r1 203.0.113.11 10.1.0 masquerade
  router r2 203.0.113.12 10.2.0 masquerade
  host a r1 10.1.0.2; host b r2 10.2.0.2 ;;
public)
  mkpub
  router r2 203.0.113.12 10.2.0 masquerade
  pubhost a 203.0.113.20; host b r2 10.2.0.2 ;;
symmetric)
  mkpub
  router r1 203.0.113.11 10.1.0 masquerade
  router r2 203.0.113.12 10.2.0 "masquerade fully-random"
  host a r1 10.1.0.2; host b r2 10.2.0.2 ;;
firewall)
  mkpub
  router r2 203.0.113.12 10.2.0 masquerade strict
  pubhost a 203.0.113.20; host b r2 10.2.0.2 ;;
samenat)
  mkpub
  router r1 203.0.113.11 10.1.0 masquerade
  host a r1 10.1.0.2; host b r1 10.1.0.3 ;;
delay)
  WAN_DELAY_MS=50
  mkpub
  router r1 203.0.113.11 10.1.0 masquerade
  router r2 203.0.113.12 10.2.0 masquerade
  host a r1 10.1.0.2; host b r2 10.2.0.2
  # the delay is real: a round trip from behind r1 to the server's host
  # crosses one delay line twice
  rtt=$(rtt_ms a 203.0.113.1)
  say "RTT alice -> server host across the delayed WAN: ${rtt} ms"
  [ "${rtt:-0}" -ge $((2 * WAN_DELAY_MS)) ] ||
    fail "RTT ${rtt} ms across the WAN, want >= $((2 * WAN_DELAY_MS))" ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac

# ---- the programs ----------------------------------------------------------

# Started with ip netns exec itself, not the ns function: `ns ... &` would
# fork a subshell, $! would be its pid, and cleanup's kill would leave the
# program behind (ip netns exec execs in place, so $! is the program).
ip netns exec "$P-pub" "$BIN/chat-server" --listen 203.0.113.1:7700 \
  --db :memory: --hash-cost min >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/server.err" 2>/dev/null && break
  sleep 0.05
done
grep -q "listening on" "$WORK/server.err" || fail "server did not start"

# client NAME USER: chat-client in namespace NAME, commands from a fifo.
client() {
  local n=$1 user=$2
  rm -f "$WORK/$user.in" "$WORK/$user.out" "$WORK/$user.err"
  mkfifo "$WORK/$user.in"
  CHAT_PASSWORD="$user-secret" ip netns exec "$P-$n" "$BIN/chat-client" \
    --server 203.0.113.1:7700 --user "$user" --register --json --log-level info \
    <"$WORK/$user.in" >>"$WORK/$user.out" 2>>"$WORK/$user.err" &
  PIDS+=($!)
  eval "exec {fd_$user}>\"$WORK/$user.in\""
  wait_for "$WORK/$user.out" '"event":"ready"' 5 || fail "$user not ready"
}
cmd() { local fd="fd_$1"; echo "$2" >&"${!fd}"; }
quit() {
  local fd="fd_$1"
  eval "exec ${!fd}>&-"
}

client b bob
client a alice
cmd alice "/add bob"
wait_for "$WORK/bob.out" '"event":"contact_request"' 5 || fail "no request"
cmd bob "/accept alice"
wait_for "$WORK/alice.out" '"event":"contact_added"' 5 || fail "not contacts"

# send FROM TO TEXT: the sent event's line (within 6 s), and the ms it took.
send() {
  local from=$1 to=$2 text=$3 t0
  t0=$(now_ms)
  cmd "$from" "/msg $to $text"
  wait_for "$WORK/$from.out" "\"event\":\"sent\".*\"to\":\"$to\"" 6 ||
    fail "$from: no sent event for '$text'"
  SENT_MS=$(( $(now_ms) - t0 ))
  SENT=$(grep "\"event\":\"sent\"" "$WORK/$from.out" | grep "\"to\":\"$to\"" | tail -n 1)
  wait_for "$WORK/$to.out" "\"body\":\"$text\"" 6 || fail "$to did not get '$text'"
}

# The ms from "asking the server for a direct link" to the link proven, in
# FROM's log ("" when it never came).
setup_ms() {
  local f=$1 a b
  a=$(grep -m1 "asking the server for a direct link" "$f" | cut -c12-23)
  b=$(grep -m1 -E "direct link to .*: (dialed|reverse|punched)" "$f" | cut -c12-23)
  [ -n "$a" ] && [ -n "$b" ] || { echo ""; return; }
  python3 -c "
def ms(t):
    h, m, s = t.split(':'); return (int(h) * 3600 + int(m) * 60) * 1000 + round(float(s) * 1000)
print(ms('$b') - ms('$a'))"
}

field() { echo "$SENT" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

check_direct() { # WANT_PATHS (a regex)
  [ "$(field via)" = direct ] || fail "not direct: $SENT"
  echo "$(field path)" | grep -qE "^($1)\$" || fail "path not $1: $SENT"
}
check_relay_in_time() {
  [ "$(field via)" = relay ] || fail "not relayed: $SENT"
  [ "$SENT_MS" -le 3600 ] || fail "relay took $SENT_MS ms (budget 3 s)"
}

for t in $(seq "$TRIES"); do
  if [ "$t" -gt 1 ]; then
    # a fresh alice: a new process, a new key, a new link
    quit alice
    wait_for "$WORK/bob.out" '"status":"offline"' 10 || fail "alice did not leave"
    sleep 0.1
    : >"$WORK/bob.out"
    client a alice
  fi
  send alice bob "hello-$t"
  case "$CASE" in
  eim | delay) check_direct punched ;;
  public) check_direct "reverse|dialed" ;;
  samenat)
    check_direct dialed
    grep -q "(LAN address)" "$WORK/alice.err" || fail "not over the LAN address" ;;
  symmetric | firewall) check_relay_in_time ;;
  esac
  ms=$(setup_ms "$WORK/alice.err")
  echo "try $t $(field via) $(field path) ${ms:-$SENT_MS} $(field fallback)"
done

if [ "$CASE" = public ]; then
  # the other way: bob (behind the NAT) dials alice's public listener...
  # on the link alice made, or a new one: direct either way
  send bob alice "back"
  [ "$(field via)" = direct ] || fail "bob->alice not direct: $SENT"
fi
say "case $CASE: ok"
exit 0
